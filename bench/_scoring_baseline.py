"""The plaintext baseline of ``fedspark bench scoring``, as a process of its own.

``python -m fedspark.bench._scoring_baseline JOINED OUT RESULT --model M.json ... [--memory 3g] [--cpus 0]``
scores the joined table with one Spark SQL expression (read Parquet,
``1/(1+exp(-(x·w+b)))``, write Parquet), which is what a company would run if
it could pool the data, and writes ``{"seconds", "cpus", "master"}`` to RESULT.
Its own process so that ``--cpus`` can pin it, JVM and all, before the JVM starts,
exactly as a federated party is pinned: the one-core figures compare like with like.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any


def score_joined(joined: Path, out: Path, models: list[dict[str, Any]], conf: dict[str, str]) -> tuple[float, str]:
    """Seconds to score and write ``joined`` (session start not counted), and the session's master."""
    from pyspark.sql import functions as F

    from fedspark.engine import build_session

    spark = build_session("fedspark-bench-scoring-plaintext", conf)
    try:
        df = spark.read.parquet(str(joined))
        linear = F.lit(sum(float(m["intercept"]) for m in models if m["intercept"] is not None))
        for model in models:
            for name, w in zip(model["feature_names"], model["weights"]):
                linear = linear + F.col(name) * F.lit(float(w))
        started = time.perf_counter()
        df.select("id", (F.lit(1.0) / (F.lit(1.0) + F.exp(-linear))).alias("score")).write.parquet(str(out))
        return time.perf_counter() - started, spark.sparkContext.master
    finally:
        spark.stop()


def main(argv: list[str] | None = None) -> int:
    from fedspark.engine import pin_to_cpus

    parser = argparse.ArgumentParser(prog="python -m fedspark.bench._scoring_baseline")
    parser.add_argument("joined")
    parser.add_argument("out")
    parser.add_argument("result")
    parser.add_argument("--model", action="append", required=True, help="a party's model.json (repeat)")
    parser.add_argument("--memory", default="3g")
    parser.add_argument("--cpus", help="comma-separated CPU numbers to pin to (local[n])")
    args = parser.parse_args(argv)
    conf = {"spark.driver.memory": args.memory}
    if args.cpus:
        conf |= pin_to_cpus([int(c) for c in args.cpus.split(",")])
    models = [json.loads(Path(m).read_text()) for m in args.model]
    seconds, master = score_joined(Path(args.joined), Path(args.out), models, conf)
    Path(args.result).write_text(json.dumps({"seconds": seconds, "cpus": sorted(os.sched_getaffinity(0)),
                                             "master": master}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
