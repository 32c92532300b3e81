"""How a job runs: the embedded runner, party processes, events and outputs, Spark sessions, spark-submit.

Nothing here knows an algorithm: a party process reads the registry
(:mod:`fedspark.algorithms`) and calls the entry point of its role. What other
layers may use is exported by :mod:`fedspark.engine`.
"""
