"""The per-job salt: every party contributes randomness, none can choose the result.

Commit-reveal: each party draws 32 random bytes and first sends only
SHA-256(domain || random); the randoms are revealed after every commitment is
known, and salt = SHA-512(domain || job id || randoms in roster order).

Why both contribute and why commit first: the salt makes H(id) specific to this
job, so blinded values from this job cannot be matched against another job's
(or a table an attacker prepared) even if a secret scalar were reused or
leaked later. If one party chose the salt it could replay an old one; if the
randoms were simply exchanged, the party that speaks last could pick its half
after seeing the others'. A commitment fixes every contribution before any is
seen, so the salt is fresh as long as one party is honest.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence

RANDOM_BYTES = 32
_COMMIT_DOMAIN = b"fedspark-psi-commit-v1\x00"
_SALT_DOMAIN = b"fedspark-psi-salt-v1\x00"


def draw_random() -> bytes:
    return secrets.token_bytes(RANDOM_BYTES)


def commitment(random: bytes) -> bytes:
    """SHA-256(domain || random): binds the party to ``random`` without showing it."""
    return hashlib.sha256(_COMMIT_DOMAIN + random).digest()


def opens(commit: bytes, random: bytes) -> bool:
    """Whether ``random`` is what ``commit`` was made from (constant-time compare)."""
    return isinstance(random, bytes) and len(random) == RANDOM_BYTES and hmac.compare_digest(commit, commitment(random))


def derive_salt(job_id: str, randoms: Sequence[bytes], *, purpose: str = "psi") -> bytes:
    """SHA-512(domain || len(job id) || job id || every party's random, in roster order): 64 bytes.

    The domain names the ``purpose`` (``"psi"``: ``fedspark-psi-salt-v1``), so
    a salt agreed for one step of a job (e.g. hetero_lr's same-ids check, which
    reuses this commit-reveal) is never another's, even from the same randoms.
    """
    job = job_id.encode("utf-8")
    domain = _SALT_DOMAIN if purpose == "psi" else f"fedspark-{purpose}-salt-v1\x00".encode()
    digest = hashlib.sha512(domain + len(job).to_bytes(4, "big") + job)
    for random in randoms:
        digest.update(random)
    return digest.digest()
