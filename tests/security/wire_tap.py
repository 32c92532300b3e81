"""Attack-test helper: each attack plays one party that deviates or computes on what it receives.

:class:`WireTap` wraps a party's federation from outside (the production
objects are untouched): it records every value the party sends and receives,
and an attacker's ``rewrite`` may replace what the party sends.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from fedspark.common import PartyRef
from fedspark.federation import Context, Federation

Rewrite = Callable[[str, object], object]
"""(wire tag, value the honest code would send) -> the value actually sent."""

RewriteTo = Callable[[str, object, PartyRef], object]
"""(wire tag, value, recipient) -> the value actually sent to that recipient."""


class WireTap:
    """A party's view of the wire: ``sent`` and ``received`` as (tag, peer, value), in order."""

    def __init__(self, federation: Federation, rewrite: Rewrite | None = None,
                 rewrite_to: RewriteTo | None = None) -> None:
        self._federation = federation
        self._rewrite = rewrite or (lambda tag, value: value)
        self._rewrite_to = rewrite_to
        self.sent: list[tuple[str, PartyRef, object]] = []
        self.received: list[tuple[str, PartyRef, object]] = []

    def send(self, tag: str, value: object, to: PartyRef) -> None:
        self.broadcast(tag, value, [to])

    def broadcast(self, tag: str, value: object, to: Iterable[PartyRef]) -> None:
        targets = list(to)
        value = self._rewrite(tag, value)
        if self._rewrite_to is not None:  # one value per recipient
            for party in targets:
                own = self._rewrite_to(tag, value, party)
                self.sent.append((tag, party, own))
                self._federation.broadcast(tag, own, [party])
            return
        self.sent += [(tag, party, value) for party in targets]
        self._federation.broadcast(tag, value, targets)

    def recv(self, tag: str, frm: PartyRef, timeout_s: float | None = None) -> Any:
        value = self._federation.recv(tag, frm, timeout_s)
        self.received.append((tag, frm, value))
        return value

    def received_as(self, suffix: str) -> list[object]:
        """Values received under tags ending in ``suffix``, in order."""
        return [value for tag, _, value in self.received if tag.endswith(suffix)]

    def sent_as(self, suffix: str) -> list[object]:
        return [value for tag, _, value in self.sent if tag.endswith(suffix)]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._federation, name)


def tapped(ctx: Context, tap_store: dict[str, WireTap], rewrite: Rewrite | None = None,
           rewrite_to: RewriteTo | None = None) -> Context:
    """``ctx`` with its federation behind a :class:`WireTap`, kept in ``tap_store`` under the party id."""
    tap = WireTap(ctx.federation, rewrite, rewrite_to)
    tap_store[ctx.party_id] = tap
    return Context(tap)  # type: ignore[arg-type]  # duck-typed: the tap forwards everything else
