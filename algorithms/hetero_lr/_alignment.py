"""Check that guest and hosts hold the same id set, without sending any id.

For jobs whose parties declare identical id sets (no PSI). Each host sends
Σ SHA-256(salt || id) mod 2^256 over its ids, with a salt the guest drew for
this job, and its count; equal digests mean equal sets. The sum does not
depend on order, so a Spark job computes it partition by partition
(:func:`spark_id_digest`) as well as the driver does from a list. A mismatch
stops every party with an error that says PSI alignment is needed. The digest
reveals only equality: the salt is fresh per job, so digests cannot be
compared across jobs or looked up.
"""

from __future__ import annotations

import functools
import hashlib
import secrets
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING

import pyarrow as pa

from fedspark.common import DataError, Role
from fedspark.federation import Context

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

_MODULUS = 2**256


class IdsNotAligned(DataError):
    """The parties' id sets differ: the job needs PSI alignment first."""

    def __init__(self, job_id: str, detail: str) -> None:
        super().__init__(
            f"job {job_id}: the parties' id sets differ ({detail}); "
            "this job needs PSI alignment before vertical training"
        )
        self.job_id = job_id


def id_digest(salt: bytes, ids: Iterable[str]) -> bytes:
    """The salted, order-independent digest of a set of ids (32 bytes)."""
    return _digest_bytes(_digest_sum(salt, ids))


def spark_id_digest(df: DataFrame, salt: bytes, id_column: str = "id") -> bytes:
    """:func:`id_digest` of a DataFrame's id column, summed per partition on the executors."""
    from fedspark.arrow_bridge import collect_arrow, map_in_arrow

    kernel = functools.partial(_digest_batches, salt=salt, id_column=id_column)
    parts = collect_arrow(map_in_arrow(df.select(id_column), kernel, "digest binary"))
    total = sum(int.from_bytes(v, "big") for v in parts.column("digest").to_pylist())
    return _digest_bytes(total)


def _digest_batches(batches: Iterator[pa.RecordBatch], *, salt: bytes, id_column: str) -> Iterator[pa.RecordBatch]:
    """Kernel: one row holding the digest sum of this partition's ids."""
    total = 0
    for batch in batches:
        total += _digest_sum(salt, (str(v) for v in batch.column(id_column).to_pylist()))
    yield pa.record_batch({"digest": pa.array([_digest_bytes(total)], pa.binary())})


def _digest_sum(salt: bytes, ids: Iterable[str]) -> int:
    total = 0
    for i in ids:
        encoded = i.encode("utf-8")
        total += int.from_bytes(hashlib.sha256(salt + len(encoded).to_bytes(4, "big") + encoded).digest(), "big")
    return total


def _digest_bytes(total: int) -> bytes:
    return (total % _MODULUS).to_bytes(32, "big")


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
