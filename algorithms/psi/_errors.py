"""Errors of the PSI step; each names the party (and column or id) at fault.

Input problems are :class:`~fedspark.common.DataError` (exit code 3): the
user fixes a table or declares an id type. A peer whose messages break the
protocol (a commitment that does not open, bytes that are not a group element)
is a :class:`~fedspark.common.ProtocolError`. An example id appears only in the
error raised by the party that holds it: it is never sent to a peer.
"""

from __future__ import annotations

from fedspark.common import DataError, ProtocolError


class PsiInputError(DataError):
    """A party's id column cannot be used for PSI (base of the input errors below)."""

    def __init__(self, party: str, message: str) -> None:
        super().__init__(f"PSI, party {party}: {message}")
        self.party = party


class InvalidIds(PsiInputError):
    """Null ids, ids of an unsupported type, or ids that do not parse as the declared type."""

    def __init__(self, party: str, column: str, problem: str) -> None:
        super().__init__(party, f"id column {column!r} {problem}")
        self.column = column


class DuplicateIds(PsiInputError):
    """An id occurs more than once: row i could not be the same person on every side."""

    def __init__(self, party: str, column: str, example: str, count: int) -> None:
        super().__init__(
            party, f"id column {column!r} holds duplicate ids, e.g. {example!r} ({count} times); ids must be unique"
        )
        self.column, self.example, self.count = column, example, count


class IdTypeMismatch(PsiInputError):
    """The parties' id columns have different types and no single id type was declared."""

    def __init__(self, party: str, detail: str) -> None:
        super().__init__(party, f"{detail}; declare the same id_type ('int' or 'string') for every party")
        self.detail = detail


class PeerInputRejected(PsiInputError):
    """Another party's id column failed its own checks; no PSI work was done."""

    def __init__(self, party: str, peer: str, problem: str) -> None:
        super().__init__(party, f"stopped because party {peer} cannot take part: {problem}")
        self.peer, self.problem = peer, problem


class EmptyIntersection(DataError):
    """The parties share no id: there is nothing to train on."""

    def __init__(self, job_id: str, own_ids: int, parties: str) -> None:
        super().__init__(
            f"job {job_id}: PSI found no id common to {parties} (this party holds {own_ids} ids); "
            "check that every party uses the same id column and id type"
        )
        self.job_id, self.own_ids = job_id, own_ids


class PsiProtocolError(ProtocolError):
    """A peer's PSI message does not fit the protocol (bad commitment, not a group element, wrong count)."""

    def __init__(self, peer: str, problem: str) -> None:
        super().__init__(f"PSI: party {peer} {problem}")
        self.peer, self.problem = peer, problem
