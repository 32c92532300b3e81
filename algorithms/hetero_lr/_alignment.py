"""Check that guest and hosts hold the same id set, without revealing any id, digest or difference.

For jobs whose parties declare identical id sets (no PSI). Every party
summarises its ids as a count n and a digest D = Σ H_salt(id) mod 2^64,
H_salt being XXH64 of the id's UTF-8 bytes seeded with XXH64(salt) (Spark's
``xxhash64(salt, id)``). The sum does not depend on order, so a Spark
aggregation computes it partition by partition, or group by group
(:func:`digest_aggregates`, in the JVM), as well as the driver does from a
list. Two different sets agree by accident with probability about 2^-64.

Who sends what (tags under the caller's scope; α, α' are the guest's fresh
ristretto255 scalars for one host, β, β' that host's; P = H2G(salt, n, D) is
a party's summary hashed to the group, :func:`summary_point`):

1. Salt, by commit-reveal (:func:`agree_salt`, skipped when the caller agreed
   on it already): ``salt_commit`` host → guest: SHA-256 of its 32 fresh random
   bytes. ``salt_commits`` guest → hosts: every commitment, the guest's first.
   ``salt_random`` host → guest: its random. ``salt_randoms`` guest → hosts:
   every random. Each party opens every commitment itself and derives
   salt = SHA-512(domain || job id || randoms). Every contribution is fixed
   before any is seen, so nobody can choose the salt, nor replay an old one,
   while one party is honest.
2. ``probe`` host → guest: its count n_h (in the clear: the check reveals the
   counts) and P_h^β.
3. ``answer`` guest → host: n_g, P_g^α and (P_h^β)^α, and its own probe P_g^α'.
4. ``reply`` host → guest: P_h^β' and (P_g^α')^β'.
5. ``verdict`` guest → hosts and arbiter: whether every host matched, and the
   counts that differ.

Each party reaches its own verdict: the host checks (P_g^α)^β = P_h^βα,
the guest checks (P_h^β')^α' = P_g^α'β'; each holds iff P_g = P_h. A host
stops on its own verdict, and also when the guest says another host differs
(a stop is always the guest's to call); it never proceeds on the guest's word
alone. The arbiter holds no ids and trusts the guest's verdict: a lie can only
stop it, or start it with hosts that refused (it then waits for them in vain).

Why this reveals nothing beyond the counts and the one bit "equal or not": a
party only ever receives P^x for an exponent x it does not know, and the
peer's P_peer^x' next to its own P_own^x' (both under the peer's exponent).
Testing a candidate set C offline would mean deciding whether
(P_own, P_own^x', P_C, P_peer^x') is a Diffie-Hellman tuple (DDH, hard in
ristretto255). The digest itself never crosses, nor any hash of it, so a
guest that holds every candidate for the few ids in the symmetric difference
(and knows the salt, as every party does) cannot tell which it is. To pass a
peer's check a party must send Q and Q^x for the peer's secret x given only
P_peer^x: without knowing P_peer (the peer's set) it cannot, and two separate
exponent pairs keep either party from echoing the other's value back. A party
may of course run the check with a set it guesses; a match then tells it the
guess was right (one guess per job, as with any equality test).

Scoring's per-row keys (``xxhash64(salt, id)``, :mod:`fedspark.algorithms.hetero_lr._scoring`)
use this agreed salt, and a host sends them only after its own verdict, so
they are salted hashes of ids the guest holds.
"""

from __future__ import annotations

import functools
import hmac
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

import xxhash

from fedspark.algorithms.psi import blind, commit_reveal, hash_to_group, random_scalar
from fedspark.common import DataError, ProtocolError, Role
from fedspark.federation import Context

if TYPE_CHECKING:
    from pyspark.sql import Column

_DIGEST_BITS = 64
_MODULUS = 1 << _DIGEST_BITS
_SALT_PURPOSE = "same-ids"
_POINT_DOMAIN = b"fedspark-same-ids-point-v1\x00"
_VALUE_BYTES = 32


class IdsNotAligned(DataError):
    """The parties' id sets differ: the job needs PSI alignment first."""

    def __init__(self, job_id: str, detail: str) -> None:
        super().__init__(
            f"job {job_id}: the parties' id sets differ ({detail}); "
            "this job needs PSI alignment before vertical training"
        )
        self.job_id, self.detail = job_id, detail


def id_digest(salt: bytes, ids: Iterable[str]) -> bytes:
    """The salted, order-independent digest of a set of ids (8 bytes)."""
    return _digest_bytes(_digest_sum(salt, ids))


def digest_aggregates(key: Column) -> dict[str, Column]:
    """The two Spark aggregates whose sums :func:`digest_from_sums` turns into the digest.

    ``key`` is ``xxhash64(salt, id)`` (:func:`fedspark.arrow_bridge.order_key`),
    Spark's chained XXH64, the same H_salt(id) as the driver computes; its low
    and high 32-bit halves are summed apart (exact in 64-bit sums up to 2^31
    rows), so partial sums (per group of an aggregation) add up too.
    """
    from pyspark.sql import functions as F

    return {"digest_low": F.sum(key.bitwiseAND(F.lit(0xFFFFFFFF))), "digest_high": F.sum(F.shiftrightunsigned(key, 32))}


def digest_from_sums(low: int | None, high: int | None) -> bytes:
    """The digest from the (summed) aggregates of :func:`digest_aggregates`."""
    return _digest_bytes(((high or 0) << 32) + (low or 0))


def summary_point(salt: bytes, count: int, digest: bytes) -> bytes:
    """P = H2G(salt, count, digest): a party's id summary as a ristretto255 element nobody knows the log of."""
    return hash_to_group(salt, _POINT_DOMAIN + count.to_bytes(8, "big") + digest)


def agree_salt(ctx: Context) -> bytes:
    """Guest and every host: this job's salt, by commit-reveal relayed by the guest (the arbiter takes no part)."""
    if ctx.role is Role.GUEST:
        return _agree_salt_guest(ctx)
    if ctx.role is Role.HOST:
        return _agree_salt_host(ctx)
    raise ProtocolError(f"job {ctx.job_id}: {ctx.me} holds no ids; the salt is agreed by the guest and the hosts")


def _agree_salt_guest(ctx: Context) -> bytes:
    mine = commit_reveal.draw_random()
    commits = [_bytes32(c, ctx, f"host #{i}", "salt commitment") for i, c in enumerate(ctx.hosts.get("salt_commit"))]
    ctx.hosts.put("salt_commits", [commit_reveal.commitment(mine), *commits])
    randoms = ctx.hosts.get("salt_random")
    for i, (commit, random) in enumerate(zip(commits, randoms)):
        if not commit_reveal.opens(commit, random):
            raise ProtocolError(
                f"job {ctx.job_id}: host #{i} revealed a salt random that does not match its commitment"
            )
    randoms = [mine, *randoms]
    ctx.hosts.put("salt_randoms", randoms)
    return commit_reveal.derive_salt(ctx.job_id, randoms, purpose=_SALT_PURPOSE)


def _agree_salt_host(ctx: Context) -> bytes:
    mine = commit_reveal.draw_random()
    ctx.guest.put("salt_commit", commit_reveal.commitment(mine))
    commits = ctx.guest.get("salt_commits")
    position = ctx.hosts.parties.index(ctx.me) + 1
    if (
        not isinstance(commits, list)
        or len(commits) != len(ctx.hosts) + 1
        or not all(isinstance(c, bytes) for c in commits)
        or commits[position] != commit_reveal.commitment(mine)
    ):
        raise ProtocolError(f"job {ctx.job_id}: the guest relayed salt commitments that do not include this host's")
    ctx.guest.put("salt_random", mine)
    randoms = ctx.guest.get("salt_randoms")
    if (
        not isinstance(randoms, list)
        or len(randoms) != len(commits)
        or not all(commit_reveal.opens(c, r) for c, r in zip(commits, randoms))
    ):
        raise ProtocolError(f"job {ctx.job_id}: the guest relayed salt randoms that do not match the commitments")
    return commit_reveal.derive_salt(ctx.job_id, randoms, purpose=_SALT_PURPOSE)


def _digest_sum(salt: bytes, ids: Iterable[str]) -> int:
    seed = xxhash.xxh64_intdigest(salt, seed=_SPARK_HASH_SEED)
    return sum(xxhash.xxh64_intdigest(i.encode("utf-8"), seed=seed) for i in ids)


_SPARK_HASH_SEED = 42
"""The seed Spark's ``xxhash64`` starts from (its first column, the salt, is hashed with it)."""


def _digest_bytes(total: int) -> bytes:
    return (total % _MODULUS).to_bytes(_DIGEST_BITS // 8, "big")


Digest = Callable[[bytes], bytes]
"""The digest of this party's id set under a salt (from a list, or a Spark job)."""


def check_alignment_guest(
    ctx: Context, ids: Sequence[str] | None, *, count: int = 0, digest: Digest | None = None, salt: bytes | None = None
) -> None:
    """Guest side: agree on the salt (unless the caller did, with :func:`agree_salt`), test equality with every
    host, announce the verdict to the hosts and the arbiter; raise :class:`IdsNotAligned` on a mismatch."""
    count, digest = _of(ids, count, digest)
    if salt is None:
        salt = agree_salt(ctx)
    mine = summary_point(salt, count, digest(salt))
    probes = ctx.hosts.get("probe")
    checks = []
    for i, (host, probe) in enumerate(zip(ctx.hosts, probes)):
        theirs = _count(probe, ctx, f"host #{i}")
        alpha, alpha2 = random_scalar(), random_scalar()
        answer = _power(alpha, _bytes32(probe.get("point"), ctx, f"host #{i}", "probe"), ctx, f"host #{i}")
        host.put(
            "answer", {"count": count, "point": blind(alpha, mine), "answer": answer, "probe": blind(alpha2, mine)}
        )
        checks.append((theirs, alpha2))
    problems = []
    for i, (reply, (theirs, alpha2)) in enumerate(zip(ctx.hosts.get("reply"), checks)):
        who = f"host #{i}"
        if not isinstance(reply, dict):
            raise ProtocolError(f"job {ctx.job_id}: {who} sent no valid equality-test reply")
        point = _power(alpha2, _bytes32(reply.get("point"), ctx, who, "reply"), ctx, who)
        same = hmac.compare_digest(point, _bytes32(reply.get("answer"), ctx, who, "reply"))
        if theirs != count:
            problems.append(f"{who} has {theirs} ids, guest has {count}")
        elif not same:
            problems.append(f"{who} holds {theirs} ids that are not the guest's")
    detail = "; ".join(problems)
    verdict = {"aligned": not problems, "detail": detail}
    ctx.hosts.put("verdict", verdict)
    if ctx.has(Role.ARBITER):
        ctx.arbiter.put("verdict", verdict)
    if problems:
        raise IdsNotAligned(ctx.job_id, detail)


def check_alignment_host(
    ctx: Context, ids: Sequence[str] | None, *, count: int = 0, digest: Digest | None = None, salt: bytes | None = None
) -> None:
    """Host side: agree on the salt (unless the caller did), test equality with the guest, and raise
    :class:`IdsNotAligned` unless this host found the guest's set equal to its own (and the guest found
    every host's equal): the guest's word alone never lets it proceed."""
    count, digest = _of(ids, count, digest)
    if salt is None:
        salt = agree_salt(ctx)
    mine = summary_point(salt, count, digest(salt))
    beta, beta2 = random_scalar(), random_scalar()
    ctx.guest.put("probe", {"count": count, "point": blind(beta, mine)})
    answer = ctx.guest.get("answer")
    if not isinstance(answer, dict):
        raise ProtocolError(f"job {ctx.job_id}: the guest sent no valid equality-test answer")
    theirs = _count(answer, ctx, "the guest")
    point = _power(beta, _bytes32(answer.get("point"), ctx, "the guest", "answer"), ctx, "the guest")
    same = hmac.compare_digest(point, _bytes32(answer.get("answer"), ctx, "the guest", "answer"))
    their_probe = _bytes32(answer.get("probe"), ctx, "the guest", "probe")
    ctx.guest.put("reply", {"point": blind(beta2, mine), "answer": _power(beta2, their_probe, ctx, "the guest")})
    me = f"host #{ctx.hosts.parties.index(ctx.me)}"  # as the guest names it
    if theirs != count:
        raise IdsNotAligned(ctx.job_id, f"{me} has {count} ids, guest has {theirs}")
    if not same:
        raise IdsNotAligned(ctx.job_id, f"{me} holds {count} ids that are not the guest's")
    verdict = ctx.guest.get("verdict")
    if not isinstance(verdict, dict) or verdict.get("aligned") is not True:
        detail = verdict.get("detail") if isinstance(verdict, dict) else "the guest sent no valid verdict"
        raise IdsNotAligned(ctx.job_id, str(detail))


def explain_mismatch_guest(ctx: Context, error: IdsNotAligned) -> IdsNotAligned:
    """Guest, after a failed verdict: the error with what each host found in its own table.

    Equal counts with different digests often mean a repeated id rather than a
    different set; only the host can tell (its ids are its own), and the job
    stops once the guest fails, so the guest waits for the hosts' word first.
    """
    notes = [f"host #{i}: {note}" for i, note in enumerate(ctx.hosts.get("diagnosis")) if note]
    return IdsNotAligned(ctx.job_id, "; ".join([error.detail, *notes])) if notes else error


def send_mismatch_diagnosis(ctx: Context, *, repeats_an_id: bool) -> None:
    """Host, after a failed verdict: tell the guest whether its own table repeats an id (never which)."""
    ctx.guest.put("diagnosis", "its table repeats an id (named in its own log)" if repeats_an_id else "")


def check_alignment_arbiter(ctx: Context) -> None:
    """Arbiter: stop unless the guest announces that every host holds its ids.

    The arbiter holds no ids, so it can only take the guest's word: a false
    "aligned" starts it alongside hosts that refused on their own verdict (it
    waits for them in vain); a false "differ" only stops it.
    """
    verdict = ctx.guest.get("verdict")
    if not isinstance(verdict, dict) or verdict.get("aligned") is not True:
        detail = verdict.get("detail") if isinstance(verdict, dict) else "no valid verdict"
        raise IdsNotAligned(ctx.job_id, str(detail))


def _count(message: Any, ctx: Context, who: str) -> int:
    count = message.get("count") if isinstance(message, dict) else None
    if not isinstance(count, int) or isinstance(count, bool) or count < 0:
        raise ProtocolError(f"job {ctx.job_id}: {who} sent no valid id count in the equality test")
    return count


def _bytes32(value: object, ctx: Context, who: str, what: str) -> bytes:
    """A 32-byte value (a group element, a commitment) from a peer, or a protocol error naming it."""
    if not isinstance(value, bytes) or len(value) != _VALUE_BYTES:
        raise ProtocolError(f"job {ctx.job_id}: {who} sent an invalid {what} ({_VALUE_BYTES} bytes expected)")
    return value


def _power(scalar: bytes, element: bytes, ctx: Context, who: str) -> bytes:
    """element^scalar; a peer's value that is not a group element (or the identity) stops the job."""
    try:
        return blind(scalar, element)
    except ValueError:
        raise ProtocolError(f"job {ctx.job_id}: {who} sent a value that is not a ristretto255 element") from None


def _of(ids: Sequence[str] | None, count: int, digest: Digest | None) -> tuple[int, Digest]:
    if digest is not None:
        return count, digest
    listed = list(ids or ())
    return len(listed), functools.partial(id_digest, ids=listed)
