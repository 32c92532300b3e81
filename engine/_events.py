"""The line protocol between ``fedspark run`` and its party processes.

A party process talks to the runner over its standard streams: it prints event
lines (prefixed, because the Spark JVM shares stdout) and reads one line of
routes on stdin once every party's gateway is listening. Events are JSON.
"""

from __future__ import annotations

import json
import sys
from typing import Any

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
