"""Run every party of a job as threads of this process, over the in-memory transport.

Protocol code is tested by running guest, host(s) and arbiter side by side:
``run_parties("job", {guest: guest_fn, host: host_fn})``. When one party fails,
the others are woken (their transport closes) instead of waiting out their
timeouts, and the first failure is re-raised with a note naming the party.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, TypeVar

from fedspark.common import PartyRef
from fedspark.federation._context import Context
from fedspark.federation._federation import Federation
from fedspark.federation.transport._loopback import LoopbackHub

if TYPE_CHECKING:
    from fedspark.federation.security._pair_keys import PairKeys

T = TypeVar("T")

PartyFunction = Callable[[Context], T]
"""What one party runs: its side of the protocol, given its context."""


def run_parties(
    job_id: str,
    functions: Mapping[PartyRef, Callable[[Context], T]],
    timeout_s: float = 60,
    *,
    pair_keys: bool | Mapping[str, PairKeys] = True,
) -> dict[PartyRef, T]:
    """Run each party's function in a thread and return their results by party.

    The roster is ``functions``' key order (so ``ctx.hosts`` follows it).
    ``timeout_s`` bounds every single receive. With ``pair_keys`` every party
    gets pair keys dealt in this process (``PairKeys.dealt``: not certified),
    or those given by party id. The first exception raised by
    any party is re-raised unchanged in type, with a note "raised by party ...".
    """
    roster = list(functions)
    from fedspark.federation.security._pair_keys import PairKeys  # cryptography, only when a job runs

    if isinstance(pair_keys, Mapping):
        dealt = dict(pair_keys)
    else:
        dealt = PairKeys.dealt([party.party_id for party in roster]) if pair_keys else {}
    hub = LoopbackHub()
    transports = {party.party_id: hub.transport(party.party_id) for party in roster}
    for transport in transports.values():
        transport.open_job(job_id, roster)

    results: dict[PartyRef, T] = {}
    failures: list[tuple[PartyRef, BaseException]] = []
    lock = threading.Lock()

    def run(party: PartyRef) -> None:
        try:
            federation = Federation(job_id, party, roster, transports[party.party_id], timeout_s,
                                    pair_keys=dealt.get(party.party_id))
            result = functions[party](Context(federation))
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread below
            with lock:
                failures.append((party, exc))
            hub.close()  # the others would otherwise wait timeout_s for a party that is gone
            return
        with lock:
            results[party] = result

    threads = [
        threading.Thread(target=run, args=(party,), name=f"fedspark-{job_id}-{party}", daemon=True)
        for party in roster
    ]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        hub.close()
    if failures:
        party, exc = failures[0]
        _add_note(exc, f"raised by party {party} in job {job_id} (run_parties)")
        raise exc
    return {party: results[party] for party in roster}


def _add_note(exc: BaseException, note: str) -> None:
    """``exc.add_note`` where it exists (3.11+); on 3.10 the note is kept but not printed."""
    add_note = getattr(exc, "add_note", None)
    if callable(add_note):
        add_note(note)
    else:
        exc.__notes__ = [*getattr(exc, "__notes__", []), note]
