"""One party's process in ``fedspark run``: gateway, Spark session, its role of the algorithm.

Started by the runner as ``python -m fedspark.engine.runtime._party``. It binds its
gateway on a free loopback port, reports the port, waits for the route table,
then runs its role. Anything that goes wrong is reported as an ``error`` event
naming this party, and the process exits non-zero so the runner stops the others.

``--party-conf`` is the party's own configuration (``engine/config/_party.py``):
its TLS files when ``--tls-dir`` is not given, and ``federation.insecure_plaintext``,
the only way to run plaintext gRPC off loopback. How the party's traffic
travelled (``mtls`` or plaintext and why) is written into its results.
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import os
import sys
import time
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fedspark.algorithms import Task, get_algorithm
from fedspark.common import ConfigError, FedsparkError, PartyRef, Role
from fedspark.crypto import SECURE_MIN_KEY_SIZE
from fedspark.engine.config._job import JobConfig, load_job
from fedspark.engine.config._party import PartyConf, load_party_conf
from fedspark.engine.runtime import _events
from fedspark.engine.runtime._outputs import party_dir, write_report
from fedspark.engine.runtime._spark import build_session, jit_conf_for, pin_to_cpus
from fedspark.federation import (
    Context,
    Federation,
    GatewayOptions,
    GrpcTransport,
    PairKeys,
    Sealer,
    Security,
    TlsConfig,
)
from fedspark.storage import local_bytes, write_json

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    me = PartyRef(Role(args.role), args.party) if args.role else PartyRef.parse(args.party)
    try:
        job = load_job(Path(args.job))
        run_party(job, me, args.job_id, Path(args.runs_dir), Path(args.tap_dir) if args.tap_dir else None,
                  Path(args.tls_dir) if args.tls_dir else None, port=args.port,
                  routes=read_routes_file(Path(args.routes)) if args.routes else None,
                  sealing_dir=Path(args.sealing_dir) if args.sealing_dir else None, exchange=args.exchange,
                  min_key_size=args.min_key_size, cpus=args.cpus,
                  party_conf=load_party_conf(Path(args.party_conf)) if args.party_conf else None)
    except FedsparkError as exc:
        _events.emit("error", party=str(me), message=str(exc), kind=type(exc).__name__)
        return exc.exit_code
    except Exception as exc:  # a bug: keep the traceback in the party log
        traceback.print_exc()
        _events.emit("error", party=str(me), message=f"{type(exc).__name__}: {exc}", kind="internal")
        return 70
    return 0


def party_spark_conf(job: JobConfig, me: PartyRef) -> dict[str, str]:
    """The job's ``spark`` section over this party's defaults: the quick JIT when its local input is small.

    Only tables on this machine are measured (before any JVM exists); on HDFS the size is unknown and
    the JVM keeps its default JIT. ``spark.driver.extraJavaOptions`` in the job replaces the choice.
    """
    cfg = job.party_config(me)
    sizes = [local_bytes(table.uri) for table in (cfg.data, cfg.test_data) if table is not None]
    known = sum(s for s in sizes if s is not None) if sizes and None not in sizes else None
    return {**jit_conf_for(known), **job.spark}


def run_party(
    job: JobConfig,
    me: PartyRef,
    job_id: str,
    runs_dir: Path,
    tap_dir: Path | None,
    tls_dir: Path | None = None,
    *,
    port: int = 0,
    routes: dict[str, str] | None = None,
    sealing_dir: Path | None = None,
    exchange: str | None = None,
    min_key_size: int = SECURE_MIN_KEY_SIZE,
    party_conf: PartyConf | None = None,
    cpus: list[int] | None = None,
) -> None:
    """Run ``me``'s side of the job.

    ``min_key_size`` is this party's own floor for Paillier keys (never taken from the shared job file),
    and ``party_conf`` its own configuration (TLS files if ``tls_dir`` is None; the plaintext opt-in).

    Without ``routes`` the runner sends them on stdin after ``ready``; in a star
    (``exchange`` set) every payload is sealed with ``sealing_dir``'s keys.

    ``cpus`` pins the party (its JVM and Python workers too) to those cores before anything starts,
    as if they were its whole machine: its local master becomes ``local[len(cpus)]`` unless the job's
    ``spark`` section names one, and its results report the cores it ran on.
    """
    if party_conf is not None and party_conf.party_id != me.party_id:
        raise ConfigError(f"party conf of party {party_conf.party_id} given to party {me}")
    tls = TlsConfig.from_dir(tls_dir, me.party_id) if tls_dir else (party_conf.tls_config() if party_conf else None)
    if sealing_dir is None and party_conf is not None:
        sealing_dir = party_conf.sealing_dir
    out = party_dir(runs_dir, job_id, me)
    parties = job.party_refs()
    pinned = pin_to_cpus(cpus) if cpus else {}
    # The Spark JVM is forked from this process: start it before gRPC's threads
    # exist, because forking a process with a live gRPC server is unsafe.
    spark = (build_session(f"fedspark-{me.role.value}-{me.party_id}", {**pinned, **party_spark_conf(job, me)})
             if me.role is not Role.ARBITER else None)
    _log_federation_to(out / "gateway.log")
    transport = GrpcTransport(
        me,
        routes,  # when known up front (--routes), a plaintext route off loopback is refused before the gateway starts
        listen=GatewayOptions(
            host=job.federation.host,
            port=port,
            tap_dir=tap_dir / f"{me.role.value}-{me.party_id}" if tap_dir else None,
            work_dir=out / "mailbox",
        ),
        security=Security(
            tls=tls,
            sealer=Sealer.from_dir(sealing_dir, me.party_id) if sealing_dir and exchange else None,
            exchange=exchange,
            insecure_plaintext=party_conf.federation.insecure_plaintext if party_conf else False,
        ),
    )
    try:
        transport.open_job(job_id, parties)
        _events.emit("ready", party=str(me), port=transport.port)
        transport.set_routes(routes if routes is not None else _read_routes())
        algorithm = get_algorithm(job.algorithm)
        delay = job.delay_for(me)
        if delay > 0 and not algorithm.delays_itself:  # e.g. homo_nn clients stall every round instead
            time.sleep(delay)  # debug.delay_s: simulates a slow or silent party
        ctx = Context(Federation(job_id, me, parties, transport, timeout_s=job.federation.timeout_s,
                                 pair_keys=PairKeys.from_dir(sealing_dir, me.party_id) if sealing_dir else None))
        metrics = algorithm.entry_point(me.role)(party_task(job, me, ctx, out, spark, min_key_size))
        metrics["transport"] = transport.mode  # every result says how it travelled (plaintext included)
        if cpus:  # read back: what the party really ran on
            metrics["cpus"] = sorted(os.sched_getaffinity(0))
            metrics["spark_master"] = spark.sparkContext.master if spark is not None else None
        write_json(out / "metrics.json", metrics)
        write_report(out / "report.md", me, job_id, metrics)
        _events.emit("done", party=str(me), metrics=_summary(metrics))
    finally:
        transport.close()


def party_task(
    job: JobConfig, me: PartyRef, ctx: Context, out: Path, spark: SparkSession | None,
    min_key_size: int = SECURE_MIN_KEY_SIZE,
) -> Task:
    """The neutral task every algorithm's entry point takes: this party's side of ``job``."""
    algorithm = get_algorithm(job.algorithm)
    cfg = job.party_config(me)
    return Task(
        ctx=ctx, me=me, spark=spark, params=algorithm.params.model_validate(job.params), job_name=job.name,
        out=out, runs_dir=out.parent.parent, data=cfg.data.spec() if cfg.data is not None else None,
        test_data=cfg.test_data.spec() if cfg.test_data is not None else None, model_dir=cfg.model_dir,
        compute=job.compute, features=job.features, align=job.align, security=job.security, debug=job.debug,
        scoring=job.scoring, min_key_size=min_key_size, delay_s=job.delay_for(me),
        emit=functools.partial(_emit_as, str(me)),
    )


def _emit_as(party: str, event: str, **fields: Any) -> None:
    _events.emit(event, party=party, **fields)


def _log_federation_to(path: Path) -> None:
    """The gateway's log in the party's run folder: one INFO line per message, refusals at WARNING."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger = logging.getLogger("fedspark.federation")
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)


def _read_routes() -> dict[str, str]:
    line = sys.stdin.readline()
    if not line:
        raise FedsparkError("the runner closed the control channel before sending routes")
    routes = json.loads(line)["routes"]
    return {str(k): str(v) for k, v in routes.items()}


def read_routes_file(path: Path) -> dict[str, str]:
    """Route table ``{party_id: "host:port"}`` from a JSON file (spark-submit gives the driver no stdin)."""
    try:
        raw = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"routes file {path}: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"routes file {path} must hold a JSON object {{party_id: 'host:port'}}")
    return {str(k): str(v) for k, v in raw.items()}


def _summary(metrics: dict[str, Any]) -> dict[str, Any]:
    keys = ("auc", "ks", "accuracy", "epochs", "seconds", "seconds_per_epoch", "converged",
            "scored_rows", "unmatched_rows", "rows_per_second", "scores", "own_ids", "matched", "unmatched",
            "transport", "cpus", "spark_master")
    return {k: v for k, v in metrics.items() if k in keys or k.startswith("phase_")}


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m fedspark.engine.runtime._party")
    parser.add_argument("--job", required=True)
    parser.add_argument("--party", required=True, help="role:party_id, or the party id with --role")
    parser.add_argument("--role", choices=[r.value for r in Role], help="this party's role (or give --party role:id)")
    parser.add_argument("--port", type=int, default=0, help="gateway port (0: any free port, reported as 'ready')")
    parser.add_argument("--routes", help="JSON file {party_id: 'host:port'}; without it routes come on stdin")
    parser.add_argument("--job-id", required=True)
    parser.add_argument("--runs-dir", required=True)
    parser.add_argument("--tap-dir")
    parser.add_argument("--tls-dir", help="folder with ca.pem, party-<id>.pem and party-<id>.key")
    parser.add_argument("--party-conf", help="this party's own conf (its tls files, federation.insecure_plaintext)")
    parser.add_argument("--sealing-dir", help="folder with sealing.key and the peers' certificates (peers/*.pem, "
                        "with ca.pem) or sealing-peers.json: pair keys, and sealing in a star")
    parser.add_argument("--exchange", help="the exchange's name: every route points at it (star topology)")
    parser.add_argument("--min-key-size", type=int, default=SECURE_MIN_KEY_SIZE,
                        help="this party's smallest accepted Paillier key (bits; under 2048 for tests only)")
    parser.add_argument("--cpus", type=_cpu_list, help="comma-separated CPU numbers to pin this party to (its JVM "
                        "and Python workers too), e.g. 0 or 2,3; a local master gets local[n]")
    return parser.parse_args(argv)


def _cpu_list(text: str) -> list[int]:
    try:
        cpus = sorted({int(part) for part in text.split(",")})
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a comma-separated list of CPU numbers: {text!r}") from None
    if not cpus or cpus[0] < 0:
        raise argparse.ArgumentTypeError(f"not a list of CPU numbers: {text!r}")
    return cpus


if __name__ == "__main__":
    sys.exit(main())
