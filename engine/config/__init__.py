"""What a job and a party are configured with: job files, party confs, the exchange's conf, a party's cluster.

Each file is validated with pydantic; every error names the file and the field.
"""
