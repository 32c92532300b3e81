"""Who sends what in ECDH PSI: the guest against every host, then one agreed intersection.

Message flow (every tag under ``<scope>.psi``; α is the guest's scalar, β_h host h's):

1. ``hello`` host → guest: commitment to its salt random, its id column's kind,
   its declared id type, and whether its column is usable (never an id).
   ``commits`` guest → hosts: every commitment, the agreed id type, or why the job stops.
2. ``reveal`` host → guest: its random and the outcome of its checks (nulls,
   unparsable, duplicates). ``reveals`` guest → hosts: every random, every
   problem. Each party opens all commitments and derives the same salt.
3. ``blinded`` both ways: the guest sends {H(x)^α} to each host; host h sends
   {H(y)^β_h} only once it holds the guest's whole column. Each is sorted by
   value (so the order says nothing about the table's order). The order of the
   two sends matters: if hosts sent first, a guest could pass host A's points
   to host B as if they were its own (and B's to A), get back H(y)^β_Aβ_B from
   both and learn which ids A and B share, even ids it does not hold. A host's
   points reach only hosts that have already re-blinded the guest's column.
4. ``reblinded`` host → guest: pairs (H(x)^α, H(x)^αβ_h). The guest computes
   H(y)^β_hα itself; the ids whose double-blinded values meet are the
   intersection with host h, and the intersection of all hosts' is the result.
   The guest checks that the pairs are exactly its values, each once, with
   distinct re-blinded values, and that a host's points are distinct.
5. ``matched`` guest → hosts: its size. ``intersection`` guest → host h: for
   each id in it, host h's own H(y)^β_h (which host h can map back to its
   rows) and the sort key H(x)^αβ_1 (the double-blinded value with the first
   host). Every party sorts by that key, so row i is the same person everywhere.
   Each host checks that it got ``matched`` rows, each of its own values at
   most once, with distinct 32-byte keys.
"""

from __future__ import annotations

import functools
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fedspark.algorithms import Task
from fedspark.algorithms.psi import commit_reveal
from fedspark.algorithms.psi._errors import (
    EmptyIntersection,
    IdTypeMismatch,
    PeerInputRejected,
    PsiInputError,
    PsiProtocolError,
)
from fedspark.algorithms.psi._group import ELEMENT_BYTES, check_scalar, random_scalar
from fedspark.algorithms.psi._ids import CANONICAL, IdType, PsiParams, canonical_ids, column_kind, local_problem
from fedspark.algorithms.psi._kernels import hash_and_blind, reblind
from fedspark.arrow_bridge import map_in_arrow
from fedspark.common import ConfigError, ProtocolError, Role
from fedspark.federation import Context

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

BLINDED = "__psi_blinded"
REBLINDED = "__psi_reblinded"
KEY = "__psi_order"
_PEER_BLINDED = "__psi_peer"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PsiResult:
    """One party's outcome of :func:`align`.

    ``table`` holds this party's rows whose id is in the intersection, sorted
    by the agreed key (row i is the same person at every party); with
    ``keep_order_key`` it also has the binary column ``order_column`` to re-sort
    by after later transformations. ``peer_ids`` are the other parties' id
    counts, which the protocol reveals (the size of each blinded column).
    """

    table: DataFrame
    own_ids: int
    matched: int
    peer_ids: dict[str, int] = field(default_factory=dict)
    id_type: IdType = IdType.STRING
    order_column: str = KEY
    salt: bytes = b""
    """The job's salt (every party knows it; recorded so a run can be audited)."""

    @property
    def unmatched(self) -> int:
        """This party's ids outside the intersection (dropped from ``table``)."""
        return self.own_ids - self.matched


def align(
    ctx: Context,
    df: DataFrame,
    id_column: str,
    spark: SparkSession,
    *,
    id_type: IdType | str | None = None,
    keep_order_key: bool = False,
    secret: bytes | None = None,
) -> PsiResult:
    """Restrict ``df`` to the ids every party (guest and all hosts) holds, in one agreed order.

    Called by the guest and by every host of the job at the same step, each
    with its own table; the arbiter takes no part. Tags live under
    ``ctx.sub("psi")``: to align twice in one job, pass differently scoped contexts.

    ``id_type`` declares how ids compare (``"int"``: by numeric value, so a
    text ``"007"`` meets the number 7; ``"string"``: by text). Parties that
    declare must declare the same; when nobody declares, the id columns must
    hold the same kind. ``secret`` is this party's 32-byte scalar; leave it
    None (a fresh one per call) except in tests that check what a peer could
    compute. Raises :class:`~fedspark.algorithms.psi.PsiInputError` subclasses
    for unusable ids (at every party, naming the party at fault) and
    :class:`~fedspark.algorithms.psi.EmptyIntersection` when nothing matches.
    """
    declared = IdType(id_type) if id_type is not None else None
    log.debug("%s: PSI starts", ctx.me)
    scalar = check_scalar(secret) if secret is not None else random_scalar()
    psi = ctx.sub("psi")
    if ctx.role is Role.GUEST:
        return _Guest(psi, df, id_column, spark, declared, scalar, keep_order_key).run()
    if ctx.role is Role.HOST:
        return _Host(psi, df, id_column, spark, declared, scalar, keep_order_key).run()
    raise ProtocolError(f"job {ctx.job_id}: {ctx.me} holds no ids; PSI runs between the guest and the hosts only")


class _Side:
    """What guest and host do alike: check, agree on the salt, blind, assemble the result."""

    def __init__(
        self,
        ctx: Context,
        df: DataFrame,
        column: str,
        spark: SparkSession,
        declared: IdType | None,
        scalar: bytes,
        keep_key: bool,
    ) -> None:
        self.ctx, self.df, self.column, self.spark = ctx, df, column, spark
        self.declared, self.scalar, self.keep_key = declared, scalar, keep_key
        self.me = str(ctx.me)
        self.random = commit_reveal.draw_random()
        self.salt = b""
        self.kind: IdType | None = None
        self.error: PsiInputError | None = None
        try:
            self.kind = column_kind(df, column, self.me)
        except PsiInputError as exc:
            self.error = exc

    def hello(self) -> dict[str, Any]:
        return {
            "commit": commit_reveal.commitment(self.random),
            "kind": self.kind.value if self.kind else None,
            "id_type": self.declared.value if self.declared else None,
            "problem": local_problem(self.error),
        }

    def check_ids(self, id_type: IdType) -> DataFrame | None:
        """Canonical ids, or None with ``self.error`` set (so peers can be told before raising)."""
        assert self.kind is not None  # a party without a usable column stopped at the hello
        try:
            ids = canonical_ids(self.df, self.column, self.kind, id_type, self.me)
        except PsiInputError as exc:
            self.error = exc
            return None
        return ids

    def stop(self, problems: dict[str, str]) -> None:
        """Raise this party's own error if it is at fault, else name the first party that is."""
        if self.error is not None:
            raise self.error
        if problems:
            peer, problem = next(iter(problems.items()))
            raise PeerInputRejected(self.me, peer, problem)

    def blind_own(self, ids: DataFrame, salt: bytes) -> tuple[DataFrame, int]:
        """``(id, BLINDED)`` computed once (checkpointed: blinding is the expensive part) and its count."""
        from pyspark.sql.types import BinaryType, StructField, StructType

        schema = StructType([self.df.schema[self.column], StructField(BLINDED, BinaryType(), False)])
        kernel = functools.partial(hash_and_blind, salt=salt, scalar=self.scalar, source=CANONICAL, target=BLINDED)
        mine = map_in_arrow(ids, kernel, schema).localCheckpoint(eager=True)
        return mine, mine.count()

    def reblind(self, received: DataFrame, origin: str) -> DataFrame:
        """``(BLINDED, REBLINDED)`` for a peer's blinded column, computed now (so it overlaps the peer's work)."""
        kernel = functools.partial(reblind, scalar=self.scalar, source=BLINDED, target=REBLINDED, origin=origin)
        received = received.select(_binary(received, origin))
        schema = f"`{BLINDED}` binary, `{REBLINDED}` binary"
        return _checkpoint(map_in_arrow(received, kernel, schema), origin)

    def result(self, keys: DataFrame, own_ids: int, matched: int, peers: dict[str, int], id_type: IdType) -> PsiResult:
        """This party's table restricted to ``keys`` (``(id, KEY)``), sorted by KEY."""
        table = self.df.join(keys, on=self.column, how="inner").orderBy(KEY)
        if not self.keep_key:
            table = table.drop(KEY)
        return PsiResult(table, own_ids, matched, peers, id_type, salt=self.salt)


class _Guest(_Side):
    def run(self) -> PsiResult:
        hosts = list(self.ctx.hosts)
        if not hosts:
            raise ProtocolError(f"job {self.ctx.job_id}: PSI needs at least one host")
        names = [str(h.party) for h in hosts]
        hellos = [_expect(h.get("hello"), str(h.party), ("commit", "kind", "id_type", "problem")) for h in hosts]
        mine = self.hello()
        problems = {n: hello["problem"] for n, hello in zip(names, hellos) if hello["problem"]}
        if self.error is not None:
            problems = {self.me: str(mine["problem"]), **problems}
        id_type, mismatch = _agree_type([self.me, *names], [mine, *hellos])
        commits = [mine["commit"], *[hello["commit"] for hello in hellos]]
        self.ctx.hosts.put("commits", {"commits": commits, "id_type": id_type, "mismatch": mismatch, "problems": problems})
        if mismatch:
            raise IdTypeMismatch(self.me, mismatch)
        self.stop(problems)

        ids = self.check_ids(IdType(id_type))
        reveals = [_expect(h.get("reveal"), str(h.party), ("random", "problem")) for h in hosts]
        problems = {n: reveal["problem"] for n, reveal in zip(names, reveals) if reveal["problem"]}
        if self.error is not None:
            problems = {self.me: str(local_problem(self.error)), **problems}
        for name, hello, reveal in zip(names, hellos, reveals):
            if not commit_reveal.opens(hello["commit"], reveal["random"]):
                raise PsiProtocolError(name, "revealed a salt random that does not match its commitment")
        randoms = [self.random, *[reveal["random"] for reveal in reveals]]
        self.ctx.hosts.put("reveals", {"randoms": randoms, "problems": problems})
        self.stop(problems)
        assert ids is not None

        salt = self.salt = commit_reveal.derive_salt(self.ctx.job_id, randoms)
        log.debug("%s: salt agreed, ids checked", self.me)
        mine_df, own_ids = self.blind_own(ids, salt)
        log.debug("%s: own ids blinded", self.me)
        outgoing = mine_df.select(BLINDED).orderBy(BLINDED)
        for host in hosts:
            host.put_table("blinded", outgoing)
        # Re-blind every host's column before waiting for replies: the hosts re-blind ours meanwhile.
        theirs = [self.reblind(host.get_table("blinded", self.spark), name) for host, name in zip(hosts, names)]
        peers = {name: _distinct_count(their, name, "blinded points", BLINDED) for name, their in zip(names, theirs)}
        log.debug("%s: hosts' ids sent, received and re-blinded", self.me)

        matched: DataFrame | None = None
        for i, (host, name, their) in enumerate(zip(hosts, names, theirs)):
            replies = _pairs(host.get_table("reblinded", self.spark), name)
            if (replied := replies.count()) != own_ids:
                raise PsiProtocolError(name, f"re-blinded {replied} values, but it was sent {own_ids}")
            pairs = mine_df.join(replies, on=BLINDED, how="inner")  # (BLINDED, id, d)
            # Every value we sent, once, each with its own re-blinded value: else one host point could
            # match two of our ids, or one id could count twice (a row kept twice misaligns all after it).
            ours, distinct = _counts(pairs, BLINDED, "d")
            if not ours == distinct[BLINDED] == distinct["d"] == own_ids:
                raise PsiProtocolError(
                    name,
                    f"re-blinded {distinct[BLINDED]} of the {own_ids} values it was sent into {distinct['d']} distinct "
                    "values; each value must come back once, re-blinded",
                )
            common = pairs.join(their, pairs["d"] == their[REBLINDED], "inner").select(
                pairs[self.column], pairs["d"].alias(f"d{i}"), their[BLINDED].alias(f"b{i}")
            )
            matched = common if matched is None else matched.join(common, on=self.column, how="inner")
        assert matched is not None
        matched = matched.localCheckpoint(eager=True)
        count = matched.count()
        log.debug("%s: intersection of %d found", self.me, count)
        self.ctx.hosts.put("matched", {"count": count})
        if count == 0:
            raise EmptyIntersection(self.ctx.job_id, own_ids, ", ".join([self.me, *names]))
        for i, host in enumerate(hosts):
            host.put_table("intersection", matched.select(f"b{i}", "d0").toDF(BLINDED, KEY).orderBy(KEY))
        keys = matched.select(self.column, matched["d0"].alias(KEY))
        return self.result(keys, own_ids, count, peers, IdType(id_type))


class _Host(_Side):
    def run(self) -> PsiResult:
        guest = self.ctx.guest
        name = str(guest.party)
        guest.put("hello", self.hello())
        commits = _expect(guest.get("commits"), name, ("commits", "id_type", "mismatch", "problems"))
        if commits["mismatch"]:
            raise IdTypeMismatch(self.me, commits["mismatch"])
        self.stop(commits["problems"])
        listed, parties = commits["commits"], len(self.ctx.hosts) + 1
        if not isinstance(listed, (list, tuple)) or len(listed) != parties:
            count = len(listed) if isinstance(listed, (list, tuple)) else type(listed).__name__
            raise PsiProtocolError(name, f"relayed {count} commitments for the {parties} parties holding ids")
        position = self.ctx.hosts.parties.index(self.ctx.me) + 1
        if listed[position] != commit_reveal.commitment(self.random):
            raise PsiProtocolError(name, "relayed a commitment that is not this party's")

        id_type = IdType(commits["id_type"])
        ids = self.check_ids(id_type)
        guest.put("reveal", {"random": self.random, "problem": local_problem(self.error)})
        reveals = _expect(guest.get("reveals"), name, ("randoms", "problems"))
        self.stop(reveals["problems"])
        assert ids is not None
        randoms = reveals["randoms"]
        if len(randoms) != len(commits["commits"]) or not all(
            commit_reveal.opens(c, r) for c, r in zip(commits["commits"], randoms)
        ):
            raise PsiProtocolError(name, "relayed salt randoms that do not match the commitments")

        salt = self.salt = commit_reveal.derive_salt(self.ctx.job_id, randoms)
        log.debug("%s: salt agreed, ids checked", self.me)
        mine_df, own_ids = self.blind_own(ids, salt)
        log.debug("%s: own ids blinded", self.me)
        # The guest's whole column first, then ours: a guest that saw our points before committing
        # to its column could send them to another host as its own and learn which ids we share.
        theirs = guest.get_table("blinded", self.spark)
        log.debug("%s: guest's blinded ids received", self.me)
        guest.put_table("blinded", mine_df.select(BLINDED).orderBy(BLINDED))
        log.debug("%s: own blinded ids sent", self.me)
        replies = self.reblind(theirs, name)
        log.debug("%s: guest's blinded ids re-blinded", self.me)
        guest.put_table("reblinded", replies)
        peers = {name: replies.count()}
        log.debug("%s: guest's ids re-blinded and returned", self.me)

        count = _expect(guest.get("matched"), name, ("count",))["count"]
        if count == 0:
            raise EmptyIntersection(self.ctx.job_id, own_ids, f"{name} and its hosts")
        if not isinstance(count, int) or not 0 <= count <= min(own_ids, peers[name]):
            raise PsiProtocolError(name, f"announced {count!r} matches between {own_ids} and {peers[name]} ids")
        final = guest.get_table("intersection", self.spark)
        if KEY not in final.columns:
            raise PsiProtocolError(name, f"sent an intersection without the column {KEY} ({final.schema.simpleString()})")
        final = final.select(_binary(final, name), final[KEY]).localCheckpoint(eager=True)
        # ``count`` rows, no value of ours twice (that row would be kept twice and misalign all after
        # it) and distinct 32-byte keys (the order every party sorts by).
        sent, distinct = _counts(final, BLINDED, KEY, widths=KEY)
        if not sent == distinct[BLINDED] == distinct[KEY] == count or distinct["widths"] != {ELEMENT_BYTES}:
            raise PsiProtocolError(
                name,
                f"announced {count} matches but sent {sent} rows with {distinct[BLINDED]} distinct values and "
                f"{distinct[KEY]} distinct keys (of {sorted(distinct['widths'])} bytes)",
            )
        keys = mine_df.join(final, on=BLINDED, how="inner")
        keys = keys.select(self.column, KEY).localCheckpoint(eager=True)
        log.debug("%s: intersection received", self.me)
        if keys.count() != count:
            raise PsiProtocolError(name, f"announced {count} matches but sent {keys.count()} of this party's values")
        return self.result(keys, own_ids, count, peers, id_type)


def _agree_type(parties: list[str], hellos: list[dict[str, Any]]) -> tuple[str, str | None]:
    """The id type every party will hash with, or why there is none (the text names each party's type)."""
    declared = {p: h["id_type"] for p, h in zip(parties, hellos) if h["id_type"] is not None}
    if len(set(declared.values())) > 1:
        listed = ", ".join(f"{p} declares {t}" for p, t in declared.items())
        return "", f"the parties declare different id types ({listed})"
    if declared:
        return next(iter(declared.values())), None
    kinds = {p: h["kind"] for p, h in zip(parties, hellos) if h["kind"] is not None}
    if len(set(kinds.values())) > 1:
        listed = ", ".join(f"{p} holds {k} ids" for p, k in kinds.items())
        return "", f"the id columns hold different types ({listed}) and no id_type is declared"
    return next(iter(kinds.values()), IdType.STRING.value), None


def _expect(message: Any, peer: str, keys: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(message, dict) or not set(keys) <= message.keys():
        raise PsiProtocolError(peer, f"sent a PSI message without the fields {', '.join(keys)}")
    return message


def _binary(received: DataFrame, origin: str) -> Any:
    """The single blinded column of a received table, named ``BLINDED``."""
    from pyspark.sql.types import BinaryType

    first = received.schema.fields[0] if received.schema.fields else None
    if first is None or not isinstance(first.dataType, BinaryType):
        raise PsiProtocolError(origin, f"sent a table without a binary column of blinded values ({received.schema.simpleString()})")
    return received[first.name].alias(BLINDED)


def _checkpoint(df: DataFrame, origin: str) -> DataFrame:
    """``df`` computed now; a kernel's refusal of ``origin``'s values surfaces as :class:`PsiProtocolError`.

    A kernel raises in a Spark task, and the driver gets Spark's own exception
    with the kernel's message in its text: the refusal is recognised there.
    """
    try:
        return df.localCheckpoint(eager=True)
    except Exception as exc:
        marker = f"{PsiProtocolError.__name__}: PSI: party {origin} "
        text = str(exc)
        if marker not in text:
            raise
        raise PsiProtocolError(origin, text.split(marker, 1)[1].splitlines()[0].strip()) from None


def _counts(df: DataFrame, *columns: str, widths: str | None = None) -> tuple[int, dict[str, Any]]:
    """Rows of ``df`` and distinct values of each of ``columns`` (and the set of byte lengths in ``widths``), in one Spark job."""
    from pyspark.sql import functions as F

    measures = [F.count(F.lit(1)), *[F.countDistinct(F.col(f"`{c}`")) for c in columns]]
    if widths is not None:
        measures.append(F.collect_set(F.length(F.col(f"`{widths}`"))))
    row = df.agg(*measures).first()
    assert row is not None
    found: dict[str, Any] = {c: int(v) for c, v in zip(columns, row[1:])}
    if widths is not None:
        found["widths"] = set(row[-1]) if row[0] else {ELEMENT_BYTES}
    return int(row[0]), found


def _distinct_count(df: DataFrame, origin: str, what: str, column: str) -> int:
    """Rows of ``df``, after checking that ``column`` holds no value twice."""
    total, distinct = _counts(df, column)
    if distinct[column] != total:
        raise PsiProtocolError(origin, f"sent {total} {what} of which only {distinct[column]} are distinct")
    return total


def _pairs(replies: DataFrame, origin: str) -> DataFrame:
    """A host's reply as ``(BLINDED, d)``: the value we sent and its re-blinded form."""
    if len(replies.columns) != 2:
        raise PsiProtocolError(origin, f"sent re-blinded pairs with {len(replies.columns)} columns instead of 2")
    return replies.toDF(BLINDED, "d")


def run_psi(task: Task) -> dict[str, Any]:
    """One party's side of a standalone ``psi`` job: align its ids with every other party's.

    The guest and each host read their own table, run :func:`align` and write only their
    own results: how many ids they hold and share, and their aligned ids (with the agreed
    order key) as Parquet in their own run folder.
    """
    from fedspark.storage import read_table

    params: PsiParams = task.params
    me, ctx, out, spark = task.me, task.ctx, task.out, task.spark
    if me.role is Role.ARBITER or spark is None:
        raise ConfigError(f"job {task.job_name}: a psi job has no arbiter ({me})")
    assert task.data is not None  # checked by the job's configuration
    started = time.monotonic()
    table = read_table(spark, task.data, party=str(me))
    load_seconds = time.monotonic() - started
    started = time.monotonic()
    result = align(ctx, table.dataframe.select("id"), "id", spark, id_type=params.id_type, keep_order_key=True)
    result.table.write.mode("overwrite").parquet(str(out / "aligned_ids.parquet"))
    seconds = time.monotonic() - started
    metrics: dict[str, Any] = {
        "role": me.role.value,
        "own_ids": result.own_ids,
        "matched": result.matched,
        "unmatched": result.unmatched,
        "peer_ids": result.peer_ids,
        "id_type": result.id_type.value,
        "seconds": seconds,
        "load_seconds": load_seconds,
    }
    lines = [f"# PSI {ctx.job_id}: {me}", "", f"- own ids: {result.own_ids}", f"- in the intersection: {result.matched}",
             f"- not matched: {result.unmatched}", *[f"- ids held by {p}: {n}" for p, n in result.peer_ids.items()],
             f"- aligned ids (sort by `{result.order_column}`): aligned_ids.parquet"]
    (out / "psi.md").write_text("\n".join(lines) + "\n")
    return metrics
