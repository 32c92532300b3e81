"""The line protocol between ``fedspark run`` and its party processes.

A party process talks to the runner over its standard streams: it prints event
lines (prefixed, because the Spark JVM shares stdout) and reads one line of
routes on stdin once every party's gateway is listening. Events are JSON.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

EVENT_PREFIX = "@@fedspark-event "


def emit(event: str, **fields: Any) -> None:
    """Print one event line for the runner (flushed at once)."""
    sys.stdout.write(EVENT_PREFIX + json.dumps({"event": event, **fields}) + "\n")
    sys.stdout.flush()


def parse(line: str) -> dict[str, Any] | None:
    """The event on a line of a party's stdout, or None for ordinary output."""
    if not line.startswith(EVENT_PREFIX):
        return None
    try:
        value = json.loads(line[len(EVENT_PREFIX) :])
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def pump(stream: IO[str] | None, log_path: Path, on_event: Callable[[dict[str, Any]], None]) -> None:
    """Hand each event line of a child's stdout to ``on_event``; other output (e.g. from its JVM) goes to its log."""
    assert stream is not None
    with open(log_path, "a") as log:
        for line in stream:
            event = parse(line)
            if event is None:
                log.write(line)
                log.flush()
            else:
                on_event(event)


def signal_group(popen: subprocess.Popen[str], sig: int) -> None:
    """Signal a child's whole process group (each runs in its own): the JVM a party forks may outlive it."""
    try:
        os.killpg(popen.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass
