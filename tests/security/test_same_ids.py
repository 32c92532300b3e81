"""Attacks on hetero_lr's ``same_ids`` check (issue 17 item 5): a dishonest guest must not learn ids
(or salted hashes of ids) outside the intersection, nor make an honest host go on with a set that differs.

Each party runs over the in-memory transport; the attacker's side is the real protocol code behind a
tapped federation that records what it receives and can rewrite what it sends.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import xxhash
from wire_tap import Rewrite, WireTap, tapped

from fedspark.algorithms.hetero_lr import _alignment as alignment
from fedspark.algorithms.hetero_lr._alignment import (
    IdsNotAligned,
    agree_salt,
    check_alignment_arbiter,
    check_alignment_guest,
    check_alignment_host,
    id_digest,
)
from fedspark.common import FedsparkError, PartyRef, ProtocolError, Role
from fedspark.federation import Context
from fedspark.federation.loopback import run_parties

GUEST, HOST, HOST2, ARBITER = (
    PartyRef(Role.GUEST, "9999"),
    PartyRef(Role.HOST, "10000"),
    PartyRef(Role.HOST, "10002"),
    PartyRef(Role.ARBITER, "10001"),
)
GUEST_IDS = [f"id{i:03d}" for i in range(100)]
CANDIDATES = [f"cand{i:02d}" for i in range(40)]
SECRET = CANDIDATES[23]
HOST_IDS = [*GUEST_IDS[:-1], SECRET]
"""The host holds one id the guest does not (and lacks one the guest holds): equal counts."""


def _tapped(ctx: Context, taps: dict[str, WireTap], rewrite: Rewrite | None = None) -> tuple[Context, WireTap]:
    """The party's alignment scope behind a wire tap (kept in ``taps`` under its party id)."""
    actx = tapped(ctx, taps, rewrite).sub("align")
    return actx, taps[ctx.party_id]


def _digest_of(ids: list[str], salts: list[bytes]) -> alignment.Digest:
    """The list digest of ``ids``, noting every salt the protocol hands this party."""

    def digest(salt: bytes) -> bytes:
        salts.append(salt)
        return id_digest(salt, ids)

    return digest


def _keys(salt: bytes, ids: list[str]) -> list[int]:
    """What scoring sends next: xxhash64(salt, id) per row (see ``_scoring``)."""
    seed = xxhash.xxh64_intdigest(salt, seed=42)
    return [xxhash.xxh64_intdigest(i.encode(), seed=seed) for i in ids]


def _honest_host(
    ids: list[str], taps: dict[str, WireTap], errors: dict[str, BaseException]
) -> Callable[[Context], None]:
    """A host that checks alignment, then (only if the check lets it) sends its rows' scoring keys."""

    def host(ctx: Context) -> None:
        actx, _ = _tapped(ctx, taps)
        salts: list[bytes] = []
        try:
            check_alignment_host(actx, None, count=len(ids), digest=_digest_of(ids, salts))
        except BaseException as exc:
            errors[ctx.party_id] = exc
            raise
        actx.guest.put("keys", _keys(salts[-1], ids))

    return host


def _values(value: Any) -> Iterator[bytes]:
    """Every bytes or int inside a received message, ints also as 8 big-endian bytes."""
    if isinstance(value, dict):
        for v in value.values():
            yield from _values(v)
    elif isinstance(value, list | tuple):
        for v in value:
            yield from _values(v)
    elif isinstance(value, bytes):
        yield value
    elif isinstance(value, int) and not isinstance(value, bool):
        yield value.to_bytes(16, "big", signed=True)[-8:]
        yield str(value).encode()


def _fingerprints(salt: bytes, ids: list[str]) -> set[bytes]:
    """What a guest who knows the salt can compute from a candidate host set and test against a message."""
    digest = id_digest(salt, ids)
    prints = {digest, digest.hex().encode(), hashlib.sha256(digest).digest(), hashlib.sha512(digest).digest()}
    prints.add(xxhash.xxh64_digest(digest))
    prints.add(str(int.from_bytes(digest, "big")).encode())
    point = getattr(alignment, "summary_point", None)
    if point is not None:
        prints.add(point(salt, len(ids), digest))
    return prints


def test_guest_that_lies_aligned_cannot_make_host_proceed() -> None:
    """The guest runs the check, finds the sets differ and tells the host "aligned": the host must
    reach its own verdict, raise IdsNotAligned, and never send its rows' salted keys."""
    taps: dict[str, WireTap] = {}
    errors: dict[str, BaseException] = {}
    got: list[Any] = []

    def lying_guest(ctx: Context) -> None:
        def lie(tag: str, value: Any) -> Any:
            return {"aligned": True, "detail": ""} if tag.endswith("verdict") else value

        actx, _ = _tapped(ctx, {}, lie)
        try:
            check_alignment_guest(actx, GUEST_IDS)
        except IdsNotAligned:
            pass  # the guest knows the truth; it lies to the host
        got.append(actx.hosts[0].get("keys"))

    with pytest.raises(IdsNotAligned):
        run_parties("job-lie", {GUEST: lying_guest, HOST: _honest_host(HOST_IDS, taps, errors)}, timeout_s=10)
    assert isinstance(errors.get(HOST.party_id), IdsNotAligned), errors
    assert not got, "the guest received the host's salted keys of ids it does not hold"
    assert not taps[HOST.party_id].sent_as("keys")


def test_guest_that_skips_the_equality_test_cannot_make_host_proceed() -> None:
    """The guest agrees on the salt, then announces "aligned" without taking part in the test:
    the host never proceeds on the guest's word (it stops when no answer comes)."""
    taps: dict[str, WireTap] = {}
    errors: dict[str, BaseException] = {}
    got: list[Any] = []

    def skipping_guest(ctx: Context) -> None:
        actx, _ = _tapped(ctx, {})
        agree_salt(actx)
        actx.hosts.put("verdict", {"aligned": True, "detail": ""})
        got.append(actx.hosts[0].get("keys"))

    with pytest.raises(FedsparkError):
        run_parties("job-skip", {GUEST: skipping_guest, HOST: _honest_host(HOST_IDS, taps, errors)}, timeout_s=3)
    assert isinstance(errors.get(HOST.party_id), FedsparkError), errors  # it waited for the answer in vain
    assert not got
    assert not taps[HOST.party_id].sent_as("keys")


@pytest.mark.parametrize(
    ("forgery", "guest_ids", "host_ids"),
    [
        ("echo-probe", GUEST_IDS, HOST_IDS),
        ("echo-own-point", GUEST_IDS, HOST_IDS),
        ("not-an-element", GUEST_IDS, HOST_IDS),
        ("claim-host-count", GUEST_IDS[:-1], GUEST_IDS),
    ],
)
def test_guest_that_forges_its_answer_cannot_pass_the_hosts_check(
    forgery: str, guest_ids: list[str], host_ids: list[str]
) -> None:
    """Without the host's set the guest cannot produce a pair (Q, Q^β) from P_h^β: echoing the host's
    probe, pairing its own point with itself, sending junk, or claiming the host's count all stop the
    host, even when the guest then announces "aligned"."""
    taps: dict[str, WireTap] = {}
    errors: dict[str, BaseException] = {}
    got: list[Any] = []
    forged: list[str] = []

    def forging_guest(ctx: Context) -> None:
        own: dict[str, WireTap] = {}

        def forge(tag: str, value: Any) -> Any:
            if tag.endswith("verdict"):
                return {"aligned": True, "detail": ""}  # and it lies about the outcome, too
            if not tag.endswith("answer"):
                return value
            forged.append(forgery)
            probe: Any = own[GUEST.party_id].received_as("probe")[0]
            if forgery == "echo-probe":
                return {**value, "point": probe["point"], "answer": probe["point"]}
            if forgery == "echo-own-point":
                return {**value, "answer": value["point"]}
            if forgery == "claim-host-count":
                return {**value, "count": probe["count"]}
            return {**value, "point": bytes(32), "answer": bytes(32)}

        actx, _ = _tapped(ctx, own, forge)
        try:
            check_alignment_guest(actx, guest_ids)
        except IdsNotAligned:
            pass
        got.append(actx.hosts[0].get("keys"))

    with pytest.raises(FedsparkError):
        run_parties("job-forge", {GUEST: forging_guest, HOST: _honest_host(host_ids, taps, errors)}, timeout_s=5)
    assert isinstance(errors.get(HOST.party_id), IdsNotAligned | ProtocolError), errors
    assert forged == [forgery] and not got
    assert not taps[HOST.party_id].sent_as("keys")


def test_guest_chooses_salt_cannot_fix_agreed_salt(monkeypatch: pytest.MonkeyPatch) -> None:
    """The guest draws the "random" it likes: the salt the host uses is still neither that value nor
    the same from one job to the next (the host's own random, committed to first, goes into it)."""
    chosen = bytes(range(64))
    real = secrets.token_bytes

    def guest_picks(n: int | None = None) -> bytes:
        if "guest" in threading.current_thread().name:
            return chosen[: n or 32]
        return real(n)

    monkeypatch.setattr(secrets, "token_bytes", guest_picks)
    host_salts: list[bytes] = []

    def guest(ctx: Context) -> None:
        check_alignment_guest(ctx.sub("align"), GUEST_IDS)

    def host(ctx: Context) -> None:
        check_alignment_host(ctx.sub("align"), None, count=len(GUEST_IDS), digest=_digest_of(GUEST_IDS, host_salts))

    for _ in range(2):
        run_parties("job-salt", {GUEST: guest, HOST: host}, timeout_s=10)
    assert len(host_salts) == 2
    for salt in host_salts:
        assert chosen[:32] not in salt and salt not in chosen
    assert host_salts[0] != host_salts[1], "the same guest choice gave the same salt twice"


def test_guest_that_changes_its_random_after_the_commitment_is_refused() -> None:
    """Commit-reveal: a guest that reveals another random than it committed to (to steer the salt
    after seeing the host's) is caught by the host before anything id-derived is sent."""
    taps: dict[str, WireTap] = {}
    errors: dict[str, BaseException] = {}

    def guest(ctx: Context) -> None:
        def swap(tag: str, value: Any) -> Any:
            return [bytes(32), *value[1:]] if tag.endswith("salt_randoms") else value

        actx, _ = _tapped(ctx, {}, swap)
        check_alignment_guest(actx, GUEST_IDS)

    with pytest.raises(FedsparkError, match="do not match the commitments"):
        run_parties("job-swap", {GUEST: guest, HOST: _honest_host(GUEST_IDS, taps, errors)}, timeout_s=5)
    assert not taps[HOST.party_id].sent_as("probe") and not taps[HOST.party_id].sent_as("keys")


def test_digest_comparison_reveals_no_digest() -> None:
    """The host's set differs from the guest's by one id, and the guest holds every candidate for it
    (and knows the salt): nothing the host sends lets it tell which candidate the host holds."""
    received: list[bytes] = []
    guest_salts: list[bytes] = []

    def curious_guest(ctx: Context) -> None:
        actx, tap = _tapped(ctx, {})
        try:
            check_alignment_guest(actx, None, count=len(GUEST_IDS), digest=_digest_of(GUEST_IDS, guest_salts))
        finally:
            received.extend(v for _, _, value in tap.received for v in _values(value))

    def host(ctx: Context) -> None:
        check_alignment_host(ctx.sub("align"), HOST_IDS)

    with pytest.raises(IdsNotAligned):
        run_parties("job-curious", {GUEST: curious_guest, HOST: host}, timeout_s=10)
    assert received, "the tap saw nothing"
    salt, seen = guest_salts[-1], set(received)
    identified = [c for c in CANDIDATES if _fingerprints(salt, [*GUEST_IDS[:-1], c]) & seen]
    assert identified == [], f"the guest identified the host's id outside the intersection: {identified}"


def test_honest_parties_agree_and_every_host_stops_when_one_differs() -> None:
    """Not an attack: with two hosts, equal sets pass everywhere with one salt; when one host differs,
    the guest, both hosts (the other one on the guest's word, which can only stop it) and the
    arbiter stop, and the guest's error names the host and the counts."""
    salts: dict[str, bytes] = {}

    def guest(ctx: Context) -> None:
        found: list[bytes] = []
        check_alignment_guest(ctx.sub("align"), None, count=len(GUEST_IDS), digest=_digest_of(GUEST_IDS, found))
        salts["guest"] = found[-1]

    def host(ids: list[str]) -> Callable[[Context], None]:
        def run(ctx: Context) -> None:
            found: list[bytes] = []
            check_alignment_host(ctx.sub("align"), None, count=len(ids), digest=_digest_of(ids, found))
            salts[str(ctx.me)] = found[-1]

        return run

    def arbiter(ctx: Context) -> None:
        check_alignment_arbiter(ctx.sub("align"))

    run_parties("job-ok", {GUEST: guest, HOST: host(GUEST_IDS), HOST2: host(GUEST_IDS[::-1]), ARBITER: arbiter})
    assert len(set(salts.values())) == 1 and len(salts) == 3

    errors: dict[str, BaseException] = {}

    def catching(fn: Callable[[Context], None]) -> Callable[[Context], None]:
        def run(ctx: Context) -> None:
            try:
                fn(ctx)
            except IdsNotAligned as exc:
                errors[str(ctx.me)] = exc

        return run

    run_parties(
        "job-differ",
        {
            GUEST: catching(guest),
            HOST: catching(host(GUEST_IDS)),
            HOST2: catching(host(GUEST_IDS[:-1])),
            ARBITER: catching(arbiter),
        },
    )
    assert set(errors) == {str(GUEST), str(HOST), str(HOST2), str(ARBITER)}
    assert f"host #1 has 99 ids, guest has {len(GUEST_IDS)}" in str(errors[str(GUEST)])
