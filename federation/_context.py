"""The scoped context algorithms program against: ``ctx.hosts.put("wx", v)``.

Tags come from scope, not string literals: ``ctx.iterations(n)`` and
``ctx.sub(name)`` nest a namespace, and the wire tag is that dotted path plus
the value's name (``iter-3.batch-7.wx``). Every round therefore has its own
tags, so a late message from round 3 can never be read as round 4's, and a
protocol that sends the same name twice in one scope fails at once with
``DuplicateSend`` instead of silently mixing values.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from fedspark.common import PartyRef, Role
from fedspark.federation._errors import EmptyGroup, InvalidName
from fedspark.federation._federation import Federation

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import DataFrame, SparkSession

    from fedspark.federation.tables._source import TableRows

_SEPARATOR = "."


def _check_name(name: str) -> str:
    if not isinstance(name, str) or not name:
        raise InvalidName(str(name), "names must be non-empty strings")
    if _SEPARATOR in name:
        raise InvalidName(name, f"{_SEPARATOR!r} separates scopes in the wire tag; use ctx.sub()")
    return name


class Party:
    """A group of exactly one party (``ctx.guest``, ``ctx.arbiter``, ``ctx.hosts[i]``).

    The group may be empty when the job has no such party (no arbiter); using
    it then raises ``EmptyGroup`` naming the job and the group.
    """

    def __init__(self, ctx: Context, label: str, party: PartyRef | None) -> None:
        self._ctx, self.label, self._party = ctx, label, party

    @property
    def party(self) -> PartyRef:
        if self._party is None:
            raise EmptyGroup(self._ctx.job_id, self.label, "address it")
        return self._party

    def put(self, name: str, value: object) -> None:
        """Send ``value`` to this party under ``name`` in the current scope."""
        party = self._require(f"put {name!r}")
        self._ctx.federation.send(self._ctx.tag(name), value, party)

    def get(self, name: str) -> Any:
        """Receive the value this party sent under ``name`` in the current scope."""
        party = self._require(f"get {name!r}")
        return self._ctx.federation.recv(self._ctx.tag(name), party)

    def get_stream(self, name: str) -> Iterator[pa.RecordBatch]:
        """Receive a large table this party sent under ``name``, batch by batch (see ``Federation.recv_stream``)."""
        party = self._require(f"get {name!r}")
        return self._ctx.federation.recv_stream(self._ctx.tag(name), party)

    def put_table(self, name: str, df: DataFrame) -> None:
        """Send a distributed table (a Spark DataFrame) to this party under ``name``."""
        from fedspark.federation.tables._tables import send_table

        send_table(self._ctx.federation, self._ctx.tag(name), df, self._require(f"put table {name!r}"))

    def get_table(self, name: str, spark: SparkSession) -> DataFrame:
        """Receive the distributed table this party sent under ``name`` as a DataFrame of ``spark``."""
        from fedspark.federation.tables._tables import recv_table

        return recv_table(self._ctx.federation, self._ctx.tag(name), self._require(f"get table {name!r}"), spark)

    def get_table_rows(self, name: str) -> TableRows:
        """Receive the distributed table this party sent under ``name`` for reading by row position."""
        from fedspark.federation.tables._tables import recv_table_rows

        return recv_table_rows(self._ctx.federation, self._ctx.tag(name), self._require(f"get table {name!r}"))

    def _require(self, action: str) -> PartyRef:
        if self._party is None:
            raise EmptyGroup(self._ctx.job_id, self.label, action)
        return self._party

    def __repr__(self) -> str:
        return f"Party({self.label}: {self._party})"


class Parties:
    """A group of several parties (``ctx.hosts``); ``get`` returns one value each, in roster order."""

    def __init__(self, ctx: Context, label: str, parties: Sequence[PartyRef]) -> None:
        self._ctx, self.label, self.parties = ctx, label, tuple(parties)

    def put(self, name: str, value: object) -> None:
        """Send the same ``value`` to every party of the group (encoded once)."""
        self._require(f"put {name!r}")
        self._ctx.federation.broadcast(self._ctx.tag(name), value, self.parties)

    def get(self, name: str) -> list[Any]:
        """Receive ``name`` from every party of the group, in roster order."""
        self._require(f"get {name!r}")
        tag = self._ctx.tag(name)
        return [self._ctx.federation.recv(tag, party) for party in self.parties]

    def __getitem__(self, index: int) -> Party:
        try:
            party = self.parties[index]
        except IndexError:
            raise IndexError(
                f"job {self._ctx.job_id} has {len(self.parties)} {self.label}; no {self.label}[{index}]"
            ) from None
        return Party(self._ctx, f"{self.label}[{index}]", party)

    def __len__(self) -> int:
        return len(self.parties)

    def __iter__(self) -> Iterator[Party]:
        return (self[i] for i in range(len(self.parties)))

    def _require(self, action: str) -> None:
        if not self.parties:
            raise EmptyGroup(self._ctx.job_id, self.label, action)

    def __repr__(self) -> str:
        return f"Parties({self.label}: {', '.join(str(p) for p in self.parties)})"


class Context:
    """One party's handle on a job, scoped to a namespace.

    ``ctx.guest`` / ``ctx.arbiter`` / ``ctx.hosts`` address the other parties;
    ``ctx.sub`` and ``ctx.iterations`` give each step its own tags.
    """

    def __init__(self, federation: Federation, namespace: Sequence[str] = ()) -> None:
        self.federation = federation
        self._namespace = tuple(_check_name(part) for part in namespace)

    @property
    def me(self) -> PartyRef:
        return self.federation.me

    @property
    def role(self) -> Role:
        return self.federation.me.role

    @property
    def party_id(self) -> str:
        return self.federation.me.party_id

    @property
    def job_id(self) -> str:
        return self.federation.job_id

    @property
    def namespace(self) -> str:
        """The dotted scope path, ``""`` at the top."""
        return _SEPARATOR.join(self._namespace)

    def tag(self, name: str) -> str:
        """The wire tag of ``name`` in this scope, e.g. ``iter-3.batch-7.wx``."""
        return _SEPARATOR.join((*self._namespace, _check_name(name)))

    @property
    def guest(self) -> Party:
        return self._single(Role.GUEST, "guest")

    @property
    def arbiter(self) -> Party:
        return self._single(Role.ARBITER, "arbiter")

    @property
    def hosts(self) -> Parties:
        return Parties(self, "hosts", self.federation.parties_with_role(Role.HOST))

    def has(self, role: Role) -> bool:
        """Whether the job has a party in ``role`` (a scoring job has no arbiter)."""
        return bool(self.federation.parties_with_role(role))

    def sub(self, name: str) -> Context:
        """A nested scope: tags inside it are prefixed with ``name.``."""
        return Context(self.federation, (*self._namespace, _check_name(name)))

    def iterations(self, n: int, prefix: str = "iter") -> Iterator[tuple[int, Context]]:
        """Yield ``(i, ctx.sub(f"{prefix}-{i}"))`` for ``i`` in ``range(n)``."""
        _check_name(prefix)
        for i in range(n):
            yield i, self.sub(f"{prefix}-{i}")

    def _single(self, role: Role, label: str) -> Party:
        holders = self.federation.parties_with_role(role)
        return Party(self, label, holders[0] if holders else None)

    def __repr__(self) -> str:
        return f"Context(job={self.job_id!r}, me={self.me}, namespace={self.namespace!r})"
