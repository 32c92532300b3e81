"""Check that guest and hosts hold the same id set, without sending any id.

For jobs whose parties declare identical id sets (no PSI). Each host sends
Σ H(salt || id) mod 2^64 over its ids, H being the first 64 bits of SHA-256,
with a salt the guest drew for this job, and its count; equal digests mean
equal sets (two different sets agree with probability 2^-64). The sum does not
depend on order, so a Spark job computes it partition by partition
(:func:`spark_id_digest`, in the JVM) as well as the driver does from a list. A mismatch
stops every party with an error that says PSI alignment is needed. The digest
reveals only equality: the salt is fresh per job, so digests cannot be
compared across jobs or looked up.
"""

from __future__ import annotations

import functools
import hashlib
import secrets
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING

from fedspark.common import DataError, Role
from fedspark.federation import Context

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

_DIGEST_BITS = 64
_MODULUS = 1 << _DIGEST_BITS


class IdsNotAligned(DataError):
    """The parties' id sets differ: the job needs PSI alignment first."""

    def __init__(self, job_id: str, detail: str) -> None:
        super().__init__(
            f"job {job_id}: the parties' id sets differ ({detail}); "
            "this job needs PSI alignment before vertical training"
        )
        self.job_id = job_id


def id_digest(salt: bytes, ids: Iterable[str]) -> bytes:
    """The salted, order-independent digest of a set of ids (8 bytes)."""
    return _digest_bytes(_digest_sum(salt, ids))


def spark_id_digest(df: DataFrame, salt: bytes, id_column: str = "id") -> bytes:
    """:func:`id_digest` of a DataFrame's id column, computed in the JVM in one aggregation.

    Spark's ``sha2`` hashes the same bytes ``_digest_sum`` does (salt, 4-byte
    big-endian length, UTF-8 id); the first 16 hex digits are summed exactly
    as decimals and reduced on the driver. No id goes through Python: at 10M
    ids the per-row Python hash took half a minute. (Each further 64-bit word
    would cost another ``conv`` per row, the slowest step here, hence 64 bits.)
    """
    from pyspark.sql import functions as F

    from fedspark.arrow_bridge import collect_arrow

    ids = F.col(id_column).cast("string")
    length = F.unhex(F.lpad(F.hex(F.octet_length(ids)), 8, "0"))
    hashed = F.sha2(F.concat(F.lit(bytearray(salt)), length, F.encode(ids, "UTF-8")), 256)
    head = F.conv(F.substring(hashed, 1, _DIGEST_BITS // 4), 16, 10).cast("decimal(20,0)")
    total = collect_arrow(df.agg(F.sum(head).alias("total"))).column("total")[0].as_py()
    return _digest_bytes(int(total or 0))


def _digest_sum(salt: bytes, ids: Iterable[str]) -> int:
    total = 0
    for i in ids:
        encoded = i.encode("utf-8")
        hashed = hashlib.sha256(salt + len(encoded).to_bytes(4, "big") + encoded).digest()
        total += int.from_bytes(hashed[: _DIGEST_BITS // 8], "big")
    return total


def _digest_bytes(total: int) -> bytes:
    return (total % _MODULUS).to_bytes(_DIGEST_BITS // 8, "big")


Digest = Callable[[bytes], bytes]
"""The digest of this party's id set under a salt (from a list, or a Spark job)."""


def check_alignment_guest(ctx: Context, ids: Sequence[str] | None, *, count: int = 0, digest: Digest | None = None) -> None:
    """Guest side: draw the salt, compare every host's digest with its own, announce the verdict."""
    count, digest = _of(ids, count, digest)
    salt = secrets.token_bytes(32)
    ctx.hosts.put("salt", salt)
    mine = digest(salt)
    replies = ctx.hosts.get("digest")
    problems = []
    for i, reply in enumerate(replies):
        if reply["count"] != count:
            problems.append(f"host #{i} has {reply['count']} ids, guest has {count}")
        elif reply["digest"] != mine:
            problems.append(f"host #{i} holds {reply['count']} ids that are not the guest's")
    detail = "; ".join(problems)
    verdict = {"aligned": not problems, "detail": detail}
    ctx.hosts.put("verdict", verdict)
    if ctx.has(Role.ARBITER):
        ctx.arbiter.put("verdict", verdict)
    if problems:
        raise IdsNotAligned(ctx.job_id, detail)


def check_alignment_host(ctx: Context, ids: Sequence[str] | None, *, count: int = 0, digest: Digest | None = None) -> None:
    count, digest = _of(ids, count, digest)
    salt = ctx.guest.get("salt")
    ctx.guest.put("digest", {"digest": digest(salt), "count": count})
    _raise_unless_aligned(ctx, ctx.guest.get("verdict"))


def check_alignment_arbiter(ctx: Context) -> None:
    _raise_unless_aligned(ctx, ctx.guest.get("verdict"))


def _raise_unless_aligned(ctx: Context, verdict: dict[str, object]) -> None:
    if not verdict["aligned"]:
        raise IdsNotAligned(ctx.job_id, str(verdict["detail"]))


def _of(ids: Sequence[str] | None, count: int, digest: Digest | None) -> tuple[int, Digest]:
    if digest is not None:
        return count, digest
    listed = list(ids or ())
    return len(listed), functools.partial(id_digest, ids=listed)
