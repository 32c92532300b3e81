"""``fedspark run``: every party of a job as its own process on this machine.

The runner starts one process per party (own gateway on a free loopback port,
own SparkSession), hands each the route table once all are listening, shows
progress from their event lines, and collects their results. If any party
fails, the others are stopped, the error names the failed party, and no process
is left behind: each party runs in its own process group (its Spark JVM too),
which is terminated and then killed.

Gateways speak mTLS on loopback too (``federation.tls``, on by default): any
process of the machine can dial a loopback port, and without a certificate
from the run's CA it must not be able to read or inject a party's messages.
The runner issues the CA and the certificates, and deletes every private key
it generated (the CA's, each party's, the exchange's) when the run ends,
whether it succeeded or not: the certificates stay, as a record of who took
part. ``tls: false`` runs plaintext gRPC and is accepted only with a loopback
``federation.host``; every party's results then say ``plaintext (loopback)``.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from fedspark.common import ConfigError, FedsparkError, PartyRef, Role
from fedspark.crypto import SECURE_MIN_KEY_SIZE
from fedspark.engine.config._cluster import ClusterConfig
from fedspark.engine.config._job import JobConfig
from fedspark.engine.runtime import _events, _star
from fedspark.engine.runtime._malloc import GATEWAY_MALLOC_ENV
from fedspark.engine.runtime._sealing import SealingKeys
from fedspark.engine.runtime._submit import spark_submit_command
from fedspark.federation.transport import is_loopback_host
from fedspark.storage import write_json

READY_TIMEOUT_S = 120.0


class PartyFailed(FedsparkError):
    """A party process of the job failed; the others were stopped."""

    def __init__(self, job_id: str, party: str, message: str, log: Path) -> None:
        super().__init__(f"job {job_id}: party {party} failed: {message} (log: {log})")
        self.job_id, self.party, self.log = job_id, party, log


@dataclass
class _Proc:
    ref: PartyRef
    popen: subprocess.Popen[str]
    log_path: Path
    routes_on_stdin: bool = True
    ready_port: int | None = None
    error: str | None = None
    result: dict[str, Any] | None = None


@dataclass
class RunResult:
    job_id: str
    run_dir: Path
    results: dict[str, dict[str, Any]] = field(default_factory=dict)
    seconds: float = 0.0


class EmbeddedRunner:
    """Runs all parties of ``job`` locally; ``on_event`` sees every party event (for progress)."""

    def __init__(
        self,
        job: JobConfig,
        job_file: Path,
        job_id: str,
        runs_dir: Path,
        *,
        tap_dir: Path | None = None,
        on_event: Any = None,
        spark_master: str | None = None,
        cores_max: int = 1,
        executor_memory: str = "512m",
        min_key_size: int = SECURE_MIN_KEY_SIZE,
        cpus: Mapping[str, Collection[int]] | None = None,
    ) -> None:
        self.job, self.job_file, self.job_id = job, job_file, job_id
        self.run_dir = runs_dir / job_id
        self.runs_dir = runs_dir
        self.tap_dir = tap_dir
        self.min_key_size = min_key_size  # every local party's own floor (the operator runs them all)
        self.on_event = on_event or (lambda event: None)
        # With a cluster master, guest and hosts are spark-submit applications on it (client mode,
        # each capped at cores_max so parties share the cluster); ports and routes are fixed up front
        # because a driver started by spark-submit has no stdin for the route table.
        self.spark_master, self.cores_max, self.executor_memory = spark_master, cores_max, executor_memory
        # Parties ("role:id") pinned to their own cores, each process tree as if on its own machine
        # (parties of a real federation share no CPU); the others run on all of this machine's.
        self.cpus = {party: sorted(set(chosen)) for party, chosen in (cpus or {}).items()}
        self._ports: dict[str, int] = {}
        self._events: queue.Queue[tuple[_Proc, dict[str, Any] | None]] = queue.Queue()
        self._procs: list[_Proc] = []
        self._is_star = self.job.federation.topology == "star"
        self._exchange: _star.ExchangeProcess | None = None

    def run(self) -> RunResult:
        started = time.monotonic()
        federation = self.job.federation
        if not federation.tls and not is_loopback_host(federation.host):
            raise ConfigError(
                f"job {self.job_id}: federation.tls: false is only accepted with a loopback federation.host, not "
                f"{federation.host!r}: plaintext gRPC off loopback authenticates nobody (keep tls: true, the default)"
            )
        self._check_cpus()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        sealing: SealingKeys | None = None
        try:
            # Every job's parties get sealing keys: a star seals payloads with them, and in every
            # topology they are the pair keys secure aggregation authenticates clients with.
            sealing = SealingKeys(self.run_dir, self.job.party_refs())
            tls_root = self._issue_certificates(sealing) if federation.tls else None
            if tls_root is not None:
                sealing.distribute_certificates(tls_root)
            else:
                sealing.distribute_table()
            if self.spark_master is not None:
                if self._is_star:
                    raise ConfigError(f"job {self.job_id}: the star topology does not run with --spark-master yet")
                self._ports = {ref.party_id: _free_port(self.job.federation.host) for ref in self.job.party_refs()}
                routes = {pid: f"{self.job.federation.host}:{port}" for pid, port in self._ports.items()}
                write_json(self.run_dir / "routes.json", routes)
            for ref in self.job.party_refs():
                self._procs.append(self._spawn(ref, tls_root, sealing))
            self._wait_ready()
            routes = {p.ref.party_id: f"{self.job.federation.host}:{p.ready_port}" for p in self._procs}
            if self._is_star:
                exchange = _star.ExchangeProcess(self.job_id, self.run_dir)
                self._exchange = exchange
                address = exchange.start(routes, self.job.federation.host, tap_dir=self.tap_dir,
                                         tls_dir=tls_root / _star.EXCHANGE_NAME if tls_root else None)
                routes = dict.fromkeys(routes, address)
            for proc in self._procs:
                if proc.routes_on_stdin:
                    assert proc.popen.stdin is not None
                    proc.popen.stdin.write(json.dumps({"routes": routes}) + "\n")
                    proc.popen.stdin.flush()
            self._wait_done()
        finally:
            self._stop_all()
            if self._exchange is not None:
                self._exchange.stop()
            if federation.tls:
                remove_private_keys(self.run_dir / "certs")
            if sealing is not None and self.tap_dir is None:  # a tap's recordings open only with them
                sealing.remove()
        result = RunResult(self.job_id, self.run_dir, seconds=time.monotonic() - started)
        result.results = {str(p.ref): p.result or {} for p in self._procs}
        return result

    def _check_cpus(self) -> None:
        unknown = sorted(set(self.cpus) - {str(ref) for ref in self.job.party_refs()})
        if unknown:
            raise ConfigError(f"job {self.job_id}: CPUs given for {', '.join(unknown)}, not parties of the job")
        if self.cpus and self.spark_master is not None:
            raise ConfigError(f"job {self.job_id}: parties are pinned to CPUs only in local mode, not on "
                              f"{self.spark_master} (a cluster's own settings give each party its cores)")

    # --- processes --------------------------------------------------------
    def _issue_certificates(self, sealing: SealingKeys | None = None) -> Path:
        """A CA for this run and one certificate per party, each in the party's own folder.

        Each party's certificate also carries its sealing key; in a star the
        exchange gets a certificate of its own.

        Each party's folder holds only its own key; the CA key stays in the runner's folder.
        """
        from fedspark.federation import init_ca, issue_party_cert

        root = self.run_dir / "certs"
        init_ca(root / "ca", name=f"fedspark job {self.job_id} CA", days=7, overwrite=True)
        names = [ref.party_id for ref in self.job.party_refs()] + ([_star.EXCHANGE_NAME] if self._is_star else [])
        for name in names:
            issue_party_cert(root / "ca", root / name, name, hosts=(self.job.federation.host, "localhost"),
                             days=7, overwrite=True, sealing_key=sealing.public(name) if sealing else None)
        return root

    def _spawn(self, ref: PartyRef, tls_root: Path | None = None, sealing: SealingKeys | None = None) -> _Proc:
        log_dir = self.run_dir / f"{ref.role.value}-{ref.party_id}"
        log_dir.mkdir(parents=True, exist_ok=True)
        log_path = log_dir / "party.log"
        cmd, env = self._command(ref, tls_root, sealing)
        log = open(log_path, "w")  # noqa: SIM115 - handed to the child, closed by the OS at exit
        popen = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True,
            bufsize=1, start_new_session=True,
            env={**GATEWAY_MALLOC_ENV, **os.environ, **env, "PYTHONUNBUFFERED": "1"},
        )
        log.close()
        proc = _Proc(ref, popen, log_path, routes_on_stdin="--routes" not in cmd)
        threading.Thread(target=self._pump, args=(proc, popen.stdout), daemon=True).start()
        return proc

    def _command(
        self, ref: PartyRef, tls_root: Path | None, sealing: SealingKeys | None = None
    ) -> tuple[list[str], dict[str, str]]:
        """The party's command line: ``python -m``, or spark-submit for a Spark party on a cluster master."""
        tls_dir = tls_root / ref.party_id if tls_root is not None else None
        port = self._ports.get(ref.party_id)
        routes = self.run_dir / "routes.json" if self._ports else None
        if self.spark_master is not None and ref.role is not Role.ARBITER:
            cluster = ClusterConfig(
                master=self.spark_master, cores_max=self.cores_max, executor_cores=self.cores_max,
                executor_memory=self.executor_memory, python=sys.executable,
            )
            submit = spark_submit_command(
                cluster, job_file=self.job_file, me=ref, job_id=self.job_id, runs_dir=self.runs_dir,
                spark_conf=self.job.spark, port=port, routes_file=routes, tls_dir=tls_dir, tap_dir=self.tap_dir,
                min_key_size=self.min_key_size, sealing_dir=sealing.folder(ref.party_id) if sealing else None,
            )
            return submit.argv, submit.env
        cmd = [
            sys.executable, "-m", "fedspark.engine.runtime._party",
            "--job", str(self.job_file), "--party", str(ref),
            "--job-id", self.job_id, "--runs-dir", str(self.runs_dir), "--min-key-size", str(self.min_key_size),
        ]
        if port is not None:
            cmd += ["--port", str(port)]  # routes still come on stdin, once every party is ready
        if self.tap_dir is not None:
            cmd += ["--tap-dir", str(self.tap_dir)]
        if tls_dir is not None:
            cmd += ["--tls-dir", str(tls_dir)]
        if sealing is not None:
            cmd += sealing.party_args(ref)
        if self._is_star:
            cmd += _star.party_args()
        if self.cpus.get(str(ref)):
            cmd += ["--cpus", ",".join(map(str, self.cpus[str(ref)]))]
        return cmd, {}

    def _pump(self, proc: _Proc, stream: IO[str] | None) -> None:
        """Forward a party's event lines; other stdout (e.g. from its JVM) goes to its log."""
        _events.pump(stream, proc.log_path, lambda event: self._events.put((proc, event)))
        self._events.put((proc, None))  # stdout closed: the process is ending

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while any(p.ready_port is None for p in self._procs):
            self._next_event(deadline, waiting_for="its gateway to start")

    def _wait_done(self) -> None:
        closed: set[str] = set()
        while len(closed) < len(self._procs):
            proc = self._next_event(None, waiting_for="the job to finish")
            if proc is not None:
                closed.add(str(proc.ref))

    def _next_event(self, deadline: float | None, waiting_for: str) -> _Proc | None:
        """Handle one event; return the party whose stream just closed, if any."""
        timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
        try:
            proc, event = self._events.get(timeout=timeout)
        except queue.Empty:
            late = [str(p.ref) for p in self._procs if p.ready_port is None]
            raise PartyFailed(self.job_id, ", ".join(late), f"timed out waiting for {waiting_for}",
                              self.run_dir) from None
        if event is None:
            code = proc.popen.wait()
            if code != 0:
                message = proc.error or f"exited with code {code}"
                raise PartyFailed(self.job_id, str(proc.ref), message, proc.log_path)
            if proc.result is None:
                raise PartyFailed(self.job_id, str(proc.ref), "exited without reporting a result", proc.log_path)
            return proc
        kind = event.get("event")
        if kind == "ready":
            proc.ready_port = int(event["port"])
        elif kind == "error":
            proc.error = str(event.get("message"))
        elif kind == "done":
            proc.result = dict(event.get("metrics", {}))
        self.on_event({**event, "party": str(proc.ref)})
        return None

    def _stop_all(self) -> None:
        """Terminate every party's process group, then kill what is left."""
        for proc in self._procs:
            if proc.popen.poll() is None:
                _events.signal_group(proc.popen, signal.SIGTERM)
        deadline = time.monotonic() + 10
        for proc in self._procs:
            try:
                proc.popen.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        for proc in self._procs:
            _events.signal_group(proc.popen, signal.SIGKILL)  # the JVM child may outlive its Python parent
            proc.popen.wait()
            for stream in (proc.popen.stdin, proc.popen.stdout):
                if stream is not None:
                    try:
                        stream.close()
                    except OSError:
                        pass


def remove_private_keys(certs: Path) -> list[Path]:
    """Delete every private key (``*.key``) the run issued under ``certs``; return what was deleted.

    Called once every process that read them has stopped. A key left in a run
    folder would let whoever reads it later speak as that party (or, the CA
    key, mint any party) to a later run that trusts the same files.
    """
    removed = []
    for key in sorted(certs.rglob("*.key")) if certs.is_dir() else []:
        key.unlink(missing_ok=True)
        removed.append(key)
    return removed


def _free_port(host: str) -> int:
    """A port that was free a moment ago (the party binds it right after; a clash fails loudly)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])
