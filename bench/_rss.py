"""Peak resident memory of a job's party processes, sampled from ``/proc`` while the job runs.

Each party is a Python process (``fedspark.engine.runtime._party … --job-id ID --party role:id``)
whose Spark JVM is a descendant. The kernel keeps every process's high-water mark (``VmHWM``),
so sampling once a second and keeping the last value read gives the peak up to a second
before the process ended; no party code is involved.
"""

from __future__ import annotations

import threading
from pathlib import Path
from types import TracebackType

_PARTY_MODULE = "fedspark.engine.runtime._party"


def _cmdline(pid: str) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


def _status(pid: str) -> dict[str, str]:
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return {}
    return dict(line.split(":", 1) for line in lines if ":" in line)


def _peak_mib(status: dict[str, str]) -> float:
    return int(status.get("VmHWM", "0 kB").split()[0]) / 1024


class PeakRss:
    """``with PeakRss(job_id) as rss: …`` then ``rss.peaks()``: {party: {python_mib, jvm_mib}}."""

    def __init__(self, job_id: str, interval_s: float = 1.0) -> None:
        self._job_id, self._interval = job_id, interval_s
        self._peaks: dict[str, dict[str, float]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fedspark-peak-rss", daemon=True)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._stop.set()
        self._thread.join()

    def peaks(self) -> dict[str, dict[str, float]]:
        return {party: dict(values) for party, values in self._peaks.items()}

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self.sample()

    def sample(self) -> None:
        processes = {pid: _status(pid) for pid in (p.name for p in Path("/proc").iterdir()) if pid.isdigit()}
        parents = {pid: status.get("PPid", "").strip() for pid, status in processes.items()}
        parties = {}
        for pid in processes:
            argv = _cmdline(pid)
            if _PARTY_MODULE in argv and self._job_id in argv and "--party" in argv:
                parties[pid] = argv[argv.index("--party") + 1]
        for pid, party in parties.items():
            peaks = self._peaks.setdefault(party, {"python_mib": 0.0, "jvm_mib": 0.0})
            peaks["python_mib"] = max(peaks["python_mib"], _peak_mib(processes[pid]))
        for pid, status in processes.items():
            if "java" not in (_cmdline(pid) or [""])[0]:
                continue
            ancestor = parents.get(pid)
            while ancestor and ancestor not in parties and ancestor != "1":
                ancestor = parents.get(ancestor)
            if ancestor in parties:
                peaks = self._peaks[parties[ancestor]]
                peaks["jvm_mib"] = max(peaks["jvm_mib"], _peak_mib(status))
