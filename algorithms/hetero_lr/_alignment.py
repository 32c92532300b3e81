"""Check that guest and hosts hold the same id set, without sending any id.

Until PSI lands, vertical jobs require identical id sets. Each host sends
SHA-256(salt || sorted ids) with a salt the guest drew for this job; equal
digests mean equal sets. A mismatch stops every party with an error that says
PSI alignment is needed. The digest reveals only equality: the salt is fresh
per job, so digests cannot be compared across jobs or looked up.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence

from fedspark.common import DataError
from fedspark.federation import Context


class IdsNotAligned(DataError):
    """The parties' id sets differ: the job needs PSI alignment first."""

    def __init__(self, job_id: str, detail: str) -> None:
        super().__init__(
            f"job {job_id}: the parties' id sets differ ({detail}); "
            "this job needs PSI alignment before vertical training"
        )
        self.job_id = job_id


def id_digest(salt: bytes, sorted_ids: Sequence[str]) -> bytes:
    h = hashlib.sha256(salt)
    for i in sorted_ids:
        encoded = i.encode("utf-8")
        h.update(len(encoded).to_bytes(4, "big"))
        h.update(encoded)
    return h.digest()


def check_alignment_guest(ctx: Context, sorted_ids: Sequence[str]) -> None:
    salt = secrets.token_bytes(32)
    ctx.hosts.put("salt", salt)
    mine = id_digest(salt, sorted_ids)
    replies = ctx.hosts.get("digest")
    problems = []
    for i, reply in enumerate(replies):
        if reply["count"] != len(sorted_ids):
            problems.append(f"host #{i} has {reply['count']} ids, guest has {len(sorted_ids)}")
        elif reply["digest"] != mine:
            problems.append(f"host #{i} holds {reply['count']} ids that are not the guest's")
    detail = "; ".join(problems)
    verdict = {"aligned": not problems, "detail": detail}
    ctx.hosts.put("verdict", verdict)
    ctx.arbiter.put("verdict", verdict)
    if problems:
        raise IdsNotAligned(ctx.job_id, detail)


def check_alignment_host(ctx: Context, sorted_ids: Sequence[str]) -> None:
    salt = ctx.guest.get("salt")
    ctx.guest.put("digest", {"digest": id_digest(salt, sorted_ids), "count": len(sorted_ids)})
    _raise_unless_aligned(ctx, ctx.guest.get("verdict"))


def check_alignment_arbiter(ctx: Context) -> None:
    _raise_unless_aligned(ctx, ctx.guest.get("verdict"))


def _raise_unless_aligned(ctx: Context, verdict: dict[str, object]) -> None:
    if not verdict["aligned"]:
        raise IdsNotAligned(ctx.job_id, str(verdict["detail"]))
