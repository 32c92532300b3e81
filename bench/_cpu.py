"""CPU seconds per party, from ``/proc``: where a bench's CPU went, by process kind.

Every party process (and the plaintext baseline) runs in its own session, so a
session groups a party's whole tree: its Python driver (gateway included), the
JVM it started, and the JVM's Python daemon and workers. The sampler reads every
process's user + system time a few times a second and keeps each one's last
value; a process that ends between two samples loses at most one interval.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path

Labeller = Callable[[list[str]], "str | None"]
"""A session leader's argv -> the name its session is counted under, or None to skip it."""

_TICK = os.sysconf("SC_CLK_TCK")


class CpuSampler:
    """Samples ``/proc`` in a thread between ``start`` and ``stop``; ``stop`` returns CPU-s per name and kind."""

    def __init__(self, label: Labeller, interval_s: float = 0.5) -> None:
        self._label, self._interval = label, interval_s
        self._names: dict[int, str | None] = {}  # session id -> name (None: not ours)
        self._last: dict[tuple[int, int], tuple[str, str, int]] = {}  # (pid, start) -> (name, kind, ticks)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> CpuSampler:
        self._thread.start()
        return self

    def stop(self) -> dict[str, dict[str, float]]:
        self._stop.set()
        self._thread.join()
        self._sample()
        totals: dict[str, dict[str, float]] = {}
        for name, kind, ticks in self._last.values():
            per_kind = totals.setdefault(name, {})
            per_kind[kind] = per_kind.get(kind, 0.0) + ticks / _TICK
        return {name: {kind: round(s, 1) for kind, s in sorted(kinds.items()) if s >= 0.05}
                | {"total": round(sum(kinds.values()), 1)} for name, kinds in sorted(totals.items())}

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self._sample()

    def _sample(self) -> None:
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:  # ended meanwhile
                continue
            comm = stat[stat.index("(") + 1:stat.rindex(")")]
            fields = stat[stat.rindex(")") + 2:].split()  # fields[0] is field 3 of proc(5)
            pid, session = int(entry.name), int(fields[3])
            name = self._session_name(session)
            if name is not None:
                kind = ("driver" if pid == session else "jvm" if comm == "java"
                        else "python workers" if comm.startswith("python") else "other")
                self._last[(pid, int(fields[19]))] = (name, kind, int(fields[11]) + int(fields[12]))

    def _session_name(self, session: int) -> str | None:
        if session not in self._names:
            try:
                argv = Path(f"/proc/{session}/cmdline").read_bytes().decode(errors="replace").split("\0")
            except OSError:
                return None  # the leader is gone: decide when (if) it is seen alive
            self._names[session] = self._label(argv)
        return self._names[session]
