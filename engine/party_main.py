"""spark-submit entry point: one party's side of a job as a Spark application.

spark-submit runs a Python *file* as the driver, so this module is also a
script: ``spark-submit [options] .../site-packages/fedspark/engine/party_main.py --job JOB.yaml
--role guest --party 9999 --port 50051 --routes routes.json`` (``fedspark spark-submit``
prints the whole command with the installed path). ``python -m
fedspark.engine.party_main`` takes the same arguments. The Spark master, deploy
mode, cores and memory come from spark-submit's command line (they win over the
job file's ``spark`` section); the gateway port and the peers' addresses come
from ``--port`` and ``--routes`` because a driver started by spark-submit has no
usable standard input. ``--party-conf`` names the party's own configuration (its
TLS files, and ``federation.insecure_plaintext``: without mTLS, a gateway on a
non-loopback address or a route off loopback is refused unless it says so).

``--check`` starts the application, reads and validates this party's table
on the executors, prints one summary line and exits: an operator's test that a
submission (archive, Python, paths, queue) works before a real job.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

if __name__ == "__main__" and sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    # Run as a file: Python put this package's folder first on sys.path, where its
    # private modules would shadow top-level names; import fedspark as installed instead.
    del sys.path[0]

from fedspark.common import FedsparkError, PartyRef, Role  # noqa: E402


def entry_point_path() -> Path:
    """This file's path, for spark-submit's primary resource."""
    return Path(os.path.abspath(__file__))


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if "--check" not in args:
        from fedspark.engine.runtime._party import main as party_main

        return party_main(args)
    args.remove("--check")
    return check(args)


def check(argv: list[str]) -> int:
    """Start Spark as submitted, read and validate this party's table, print a summary line."""
    import argparse

    from fedspark.engine.config._job import load_job
    from fedspark.engine.runtime import _events
    from fedspark.engine.runtime._spark import build_session
    from fedspark.storage import TableSpec, read_table

    parser = argparse.ArgumentParser(prog="party_main.py --check")
    parser.add_argument("--job", required=True)
    parser.add_argument("--party", required=True)
    parser.add_argument("--role", choices=[r.value for r in Role])
    args, _ = parser.parse_known_args(argv)  # the job's other arguments are accepted and ignored
    me = PartyRef(Role(args.role), args.party) if args.role else PartyRef.parse(args.party)
    try:
        job = load_job(Path(args.job))
        spark = build_session(f"fedspark-check-{me.role.value}-{me.party_id}", job.spark)
        try:
            summary: dict[str, object] = {"party": str(me), "master": spark.sparkContext.master,
                                          "python": sys.executable, "spark_version": spark.version}
            cfg = job.party_config(me).data
            if cfg is not None:
                table = read_table(spark, TableSpec(**cfg.model_dump()), party=str(me))
                summary.update(table=table.uri, rows=table.n_rows, features=len(table.feature_names))
                table.unpersist()
        finally:
            spark.stop()
    except FedsparkError as exc:
        _events.emit("error", party=str(me), message=str(exc), kind=type(exc).__name__)
        return exc.exit_code
    _events.emit("checked", **summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
