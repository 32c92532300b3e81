"""Who the clients of a horizontal job are: the guest and every host, by party id."""

from __future__ import annotations

from fedspark.common import PartyRef, Role
from fedspark.federation import Context, Party


def client_refs(ctx: Context) -> dict[str, PartyRef]:
    """Every client (guest first, then hosts in roster order) keyed by party id."""
    refs = [*ctx.federation.parties_with_role(Role.GUEST), *ctx.federation.parties_with_role(Role.HOST)]
    return {ref.party_id: ref for ref in refs}


def at(ctx: Context, ref: PartyRef) -> Party:
    """``ref`` addressed in ``ctx``'s scope (a ``Party`` carries the scope its tags come from)."""
    return Party(ctx, str(ref), ref)
