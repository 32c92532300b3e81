"""Star topology in ``fedspark run``: sealing keys for every party and an exchange process.

With ``federation: {topology: star}`` the embedded runner

* seals every payload with the parties' sealing keys (``_sealing``, made for
  every job: mesh parties use them for pair keys);
* with ``tls: true``, also issues the exchange a certificate naming it;
* once every party's gateway listens, starts ``fedspark exchange`` on a free
  loopback port with the parties' gateways as its routes, and hands each party
  a route table in which every peer is the exchange.

The exchange runs in its own process group and exits when the runner closes
its standard input, so no process is left behind even if the runner dies.
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO

import yaml

from fedspark.common import FedsparkError
from fedspark.engine.runtime import _events
from fedspark.engine.runtime._malloc import GATEWAY_MALLOC_ENV

EXCHANGE_NAME = "exchange"
READY_TIMEOUT_S = 60.0


class ExchangeFailed(FedsparkError):
    """The exchange process of a star job did not start or died."""

    def __init__(self, job_id: str, message: str, log: Path) -> None:
        super().__init__(f"job {job_id}: the exchange failed: {message} (log: {log})")
        self.job_id, self.log = job_id, log


def party_args() -> list[str]:
    """What a party process of a star job needs on its command line beyond its sealing folder."""
    return ["--exchange", EXCHANGE_NAME]


class ExchangeProcess:
    """``fedspark exchange`` as a child process of the runner."""

    def __init__(self, job_id: str, run_dir: Path) -> None:
        self.job_id = job_id
        self.folder = run_dir / EXCHANGE_NAME
        self.log_path = self.folder / "exchange.log"
        self._popen: subprocess.Popen[str] | None = None
        self._events: queue.Queue[dict[str, object] | None] = queue.Queue()

    def start(self, routes: dict[str, str], host: str, *, tls_dir: Path | None, tap_dir: Path | None) -> str:
        """Start the exchange with ``routes`` and return its address once it listens."""
        self.folder.mkdir(parents=True, exist_ok=True)
        conf = self.folder / "exchange.yaml"
        settings: dict[str, object] = {"name": EXCHANGE_NAME, "host": host, "port": 0, "routes": routes}
        # Absolute paths: the exchange reads relative ones from its configuration file's folder.
        if tls_dir is not None:
            folder = tls_dir.resolve()
            settings["tls"] = {"ca_cert": str(folder / "ca.pem"), "cert": str(folder / f"party-{EXCHANGE_NAME}.pem"),
                               "key": str(folder / f"party-{EXCHANGE_NAME}.key")}
        if tap_dir is not None:
            settings["tap_dir"] = str(tap_dir.resolve() / EXCHANGE_NAME)
        conf.write_text(yaml.safe_dump(settings))
        cmd = [sys.executable, "-c", "from fedspark.engine.cli import main; main()",
               "exchange", "--conf", str(conf), "--exit-with-stdin"]
        with open(self.log_path, "w") as log:
            self._popen = subprocess.Popen(
                cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True, bufsize=1,
                start_new_session=True, env={**GATEWAY_MALLOC_ENV, **os.environ, "PYTHONUNBUFFERED": "1"},
            )
        threading.Thread(target=self._pump, args=(self._popen.stdout,), daemon=True).start()
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            try:
                event = self._events.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise ExchangeFailed(self.job_id, f"not listening after {READY_TIMEOUT_S:.0f}s", self.log_path) from None
            if event is None:
                code = self._popen.wait()
                raise ExchangeFailed(self.job_id, f"exited with code {code} before listening", self.log_path)
            if event.get("event") == "ready":
                return f"{host}:{event['port']}"

    def _pump(self, stream: IO[str] | None) -> None:
        _events.pump(stream, self.log_path, self._events.put)
        self._events.put(None)

    def stop(self) -> None:
        """Close its stdin (it exits), then terminate and kill its process group if it lingers."""
        popen, self._popen = self._popen, None
        if popen is None:
            return
        for stream in (popen.stdin,):
            if stream is not None:
                try:
                    stream.close()
                except OSError:
                    pass
        try:
            popen.wait(timeout=5)
        except subprocess.TimeoutExpired:
            _events.signal_group(popen, signal.SIGTERM)
            try:
                popen.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        _events.signal_group(popen, signal.SIGKILL)
        popen.wait()
        if popen.stdout is not None:
            popen.stdout.close()

