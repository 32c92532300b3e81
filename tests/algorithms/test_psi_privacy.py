"""What crosses the wire in PSI, recorded by each gateway's tap (real gRPC gateways on loopback).

Only blinded group elements may cross: no raw id and no hash of an id, salted
or not, blinded by nobody. And for every id outside the intersection, nothing
the receiving side holds (its mailbox, as the tap recorded it, or its output)
contains any encoding of that id that the receiving side could compute itself
without the sender's secret scalar.
"""

from __future__ import annotations

import hashlib
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pysodium
import pytest
from pyspark.sql import SparkSession

from fedspark.algorithms.psi import PsiResult, align
from fedspark.common import PartyRef, Role
from fedspark.federation import Context, Federation, GrpcTransport, SendOptions, create_gateway

GUEST = PartyRef(Role.GUEST, "9999")
HOST = PartyRef(Role.HOST, "10000")
JOB = "psi-privacy"
ALPHA = pysodium.crypto_core_ristretto255_scalar_random()  # the guest's secret
BETA = pysodium.crypto_core_ristretto255_scalar_random()  # the host's secret


def _ids(label: str, count: int) -> list[str]:
    run = uuid.uuid4().hex[:12]
    return [f"{label}-{run}-{i:03d}" for i in range(count)]


COMMON, GUEST_ONLY, HOST_ONLY = _ids("common", 40), _ids("guest-only", 40), _ids("host-only", 40)


@pytest.fixture(scope="module")
def psi_run(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """One PSI over real gateways with a tap each; yields both results, both outputs and both taps."""
    tap = tmp_path_factory.mktemp("psi-tap")
    transports = {p.party_id: GrpcTransport(create_gateway(p.party_id, tap_dir=tap / p.party_id)[0], send=SendOptions(connect_deadline_s=10))
                  for p in (GUEST, HOST)}
    routes = {pid: f"127.0.0.1:{t.gateway.port}" for pid, t in transports.items()}
    for transport in transports.values():
        transport.set_routes(routes)
        transport.open_job(JOB, [GUEST, HOST])
    tables = {
        GUEST: spark.createDataFrame([(i, f"g:{i}") for i in COMMON + GUEST_ONLY], "id string, g string"),
        HOST: spark.createDataFrame([(i, f"h:{i}") for i in HOST_ONLY + COMMON], "id string, h string"),
    }
    secrets = {GUEST: ALPHA, HOST: BETA}
    results: dict[PartyRef, Any] = {}

    def run(party: PartyRef) -> None:
        try:
            ctx = Context(Federation(JOB, party, [GUEST, HOST], transports[party.party_id], timeout_s=300))
            result = align(ctx, tables[party], "id", spark, secret=secrets[party], keep_order_key=True)
            results[party] = (result, [tuple(row) for row in result.table.collect()])
        except BaseException as exc:  # handed to the test below
            results[party] = exc

    threads = [threading.Thread(target=run, args=(p,)) for p in (GUEST, HOST)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=600)
    finally:
        for transport in transports.values():
            transport.close()
    for party, value in results.items():
        if isinstance(value, BaseException):
            raise AssertionError(f"{party} failed") from value
    yield {"results": results, "tap": {p: _read_tap(tap / p.party_id) for p in (GUEST, HOST)}}


def _read_tap(folder: Path) -> bytes:
    files = sorted(folder.glob("*.bin"))
    assert files, f"the tap at {folder} recorded nothing"
    return b"\n".join(path.read_bytes() for path in files)


def _h(salt: bytes, id_: str) -> bytes:
    """H(id), computed independently of fedspark's code: from_hash(SHA-512(salt || id))."""
    return pysodium.crypto_core_ristretto255_from_hash(hashlib.sha512(salt + id_.encode()).digest())


def _unblinded(salt: bytes, id_: str) -> dict[str, bytes]:
    """Every form of an id that anyone can compute without a secret scalar."""
    raw = id_.encode()
    salted = hashlib.sha512(salt + raw).digest()
    return {
        "raw id": raw,
        "sha256(id)": hashlib.sha256(raw).digest(),
        "sha256 hex": hashlib.sha256(raw).hexdigest().encode(),
        "sha512(id)": hashlib.sha512(raw).digest(),
        "md5(id)": hashlib.md5(raw).digest(),
        "sha512(salt || id)": salted,
        "sha512(salt || id)[:32]": salted[:32],
        "H(id)": _h(salt, id_),
    }


def _held(run: dict[str, Any], party: PartyRef) -> bytes:
    """Everything ``party`` holds from the PSI: its mailbox as tapped and its output rows."""
    _, rows = run["results"][party]
    return run["tap"][party] + repr(rows).encode() + b"".join(v for row in rows for v in row if isinstance(v, bytes))


def test_only_blinded_values_cross_the_wire(psi_run: dict[str, Any]) -> None:
    salt = psi_run["results"][GUEST][0].salt
    wire = psi_run["tap"][GUEST] + psi_run["tap"][HOST]
    leaks = [f"{form} of {i}" for i in COMMON + GUEST_ONLY + HOST_ONLY for form, value in _unblinded(salt, i).items() if value in wire]
    assert not leaks, leaks[:5]
    # The scan sees real payload bytes: blinded values do cross, in the clear of their encoding.
    assert all(pysodium.crypto_scalarmult_ristretto255(ALPHA, _h(salt, i)) in psi_run["tap"][HOST] for i in GUEST_ONLY)
    assert all(pysodium.crypto_scalarmult_ristretto255(BETA, _h(salt, i)) in psi_run["tap"][GUEST] for i in HOST_ONLY)


@pytest.mark.parametrize(
    ("receiver", "own_secret", "others_only"),
    [(GUEST, ALPHA, HOST_ONLY), (HOST, BETA, GUEST_ONLY)],
    ids=["guest-vs-host-only-ids", "host-vs-guest-only-ids"],
)
def test_a_party_cannot_recognise_the_other_sides_ids_outside_the_intersection(
    psi_run: dict[str, Any], receiver: PartyRef, own_secret: bytes, others_only: list[str]
) -> None:
    salt = psi_run["results"][receiver][0].salt
    held = _held(psi_run, receiver)
    for i in others_only:
        # What the receiver can compute alone: every unblinded form, and H(id) under its own secret.
        computable = {**_unblinded(salt, i), "H(id)^own": pysodium.crypto_scalarmult_ristretto255(own_secret, _h(salt, i))}
        found = [form for form, value in computable.items() if value in held]
        assert not found, f"{receiver} holds {found} of the other side's id {i}"


def test_both_sides_get_exactly_the_intersection_in_one_order(psi_run: dict[str, Any]) -> None:
    guest: tuple[PsiResult, list[tuple[Any, ...]]] = psi_run["results"][GUEST]
    host: tuple[PsiResult, list[tuple[Any, ...]]] = psi_run["results"][HOST]
    assert [r[0] for r in guest[1]] == [r[0] for r in host[1]]
    assert sorted(r[0] for r in guest[1]) == sorted(COMMON)
    assert guest[0].salt == host[0].salt and len(guest[0].salt) == 64
    # The agreed key is the double-blinded value H(id)^(alpha*beta), which both compute.
    salt = guest[0].salt
    expected = {i: pysodium.crypto_scalarmult_ristretto255(BETA, pysodium.crypto_scalarmult_ristretto255(ALPHA, _h(salt, i)))
                for i in COMMON}
    assert [r[2] for r in guest[1]] == [expected[r[0]] for r in guest[1]]
