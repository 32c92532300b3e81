"""Roles and party references shared by every layer.

A *party* is an organisation (an id such as ``9999``); a *role* is what it does
in one job. One party may hold several roles in different jobs, so messages are
addressed by (role, party id), never by either alone.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Role(str, enum.Enum):
    GUEST = "guest"
    HOST = "host"
    ARBITER = "arbiter"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True, order=True)
class PartyRef:
    """One role played by one party in a job, e.g. ``host:10000``."""

    role: Role
    party_id: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "role", Role(self.role))
        object.__setattr__(self, "party_id", str(self.party_id))

    def __str__(self) -> str:
        return f"{self.role.value}:{self.party_id}"

    @classmethod
    def parse(cls, text: str) -> PartyRef:
        """Parse ``"host:10000"`` (the form used in logs and route tables)."""
        role, sep, party_id = text.partition(":")
        if not sep or not party_id:
            raise ValueError(f"party reference {text!r} is not of the form role:party_id")
        return cls(Role(role), party_id)
