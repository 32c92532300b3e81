"""Attacks on homo_nn's secure aggregation by a deviating arbiter (issue 20).

Each test runs the real clients (``train_client``) and the real arbiter
(``train_arbiter``) in one process, the arbiter behind a :class:`WireTap`
whose rewrite plays the deviation: the arbiter relays every client's message,
so it can swap, invent or withhold anything it relays. A test passes when the
clients refuse before revealing anything (or, for packed Paillier, when what
a client could decrypt of another's update is noise).
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pytest
from wire_tap import RewriteTo, WireTap, tapped

from fedspark.algorithms.homo_nn import ArrayRows, HomoNNParams, RoundError
from fedspark.algorithms.homo_nn import _masking as m
from fedspark.algorithms.homo_nn._arbiter import train_arbiter
from fedspark.algorithms.homo_nn._client import train_client
from fedspark.algorithms.homo_nn._local import LocalTrainer
from fedspark.arrow_bridge import fixed_binary_to_ints
from fedspark.common import PartyRef, Role
from fedspark.crypto import DecodingOverflow, Packer, PrivateKey
from fedspark.federation import run_parties

GUEST = PartyRef(Role.GUEST, "9999")
HOSTS = [PartyRef(Role.HOST, "10000"), PartyRef(Role.HOST, "10002"), PartyRef(Role.HOST, "10003")]
CLIENTS = [GUEST, *HOSTS]
ARBITER = PartyRef(Role.ARBITER, "10001")
VICTIM = "9999"


def _params(**secure: Any) -> HomoNNParams:
    return HomoNNParams.model_validate({
        "network": {"layers": [{"units": 3, "activation": "tanh"}], "learning_rate": 0.3},
        "rounds": 1, "local_epochs": 1, "batch_size": 16, "seed": 5,
        "secure": {"mode": "masking", **secure}, "sync": {"deadline_s": 5.0},
    })


def _trainer(i: int, params: HomoNNParams) -> LocalTrainer:
    rng = np.random.default_rng(i)
    x = rng.normal(size=(40, 4))
    y = (x @ [1.0, -1.0, 0.5, 0.0] > 0).astype(np.float64)
    return LocalTrainer(ArrayRows(x, y), params)


def _run(job: str, params: HomoNNParams, rewrite_to: RewriteTo, taps: dict[str, WireTap]) -> dict[PartyRef, Any]:
    functions: dict[PartyRef, Any] = {
        ref: (lambda ctx, i=i: train_client(ctx, _trainer(i, params), params, record_updates=True))
        for i, ref in enumerate(CLIENTS)
    }
    functions[ARBITER] = lambda ctx: train_arbiter(tapped(ctx, taps, rewrite_to=rewrite_to), params)
    return run_parties(job, functions, timeout_s=20)  # every client gets pair keys dealt in-process


def _members(value: Any, ids: list[str]) -> Any:
    """A set of clients in the format of ``value`` (a bitmap over the sorted selection, or a list of ids)."""
    if isinstance(value, list):
        return sorted(ids)
    universe = sorted(c.party_id for c in CLIENTS)
    return bytes(int(v in ids) for v in universe)


def _revealed(taps: dict[str, WireTap]) -> list[object]:
    return taps[ARBITER.party_id].received_as("sa.reveal")


# ---------------------------------------------------------------- round keys


def test_an_arbiter_substituting_what_a_client_relays_is_refused() -> None:
    """The arbiter stands in for 10002 towards 10000: on 62d6ef6 it swapped 10002's relayed round key for its
    own (then it could remove their pairwise mask); round keys no longer cross the arbiter, so it can only
    substitute 10002's sealed share, which does not open under their pair key."""
    from nacl.bindings import crypto_box_keypair

    attacker_public, _ = crypto_box_keypair()

    rosters: list[str] = []

    def swap(tag: str, value: Any, to: PartyRef) -> Any:
        if to.party_id != "10000" or not isinstance(value, dict) or not value.get("included"):
            return value
        value = copy.deepcopy(value)
        if tag.endswith("sa.roster"):  # the round keys 62d6ef6 relayed
            rosters.append(tag)
            value["keys"]["10002"]["mask"] = bytes(attacker_public)
        elif tag.endswith("sa.relay") and not rosters and "10002" in value["shares"]:
            value["shares"]["10002"] = m.seal(bytes(32), b"10002>10000|" + bytes(66))
        return value

    taps: dict[str, WireTap] = {}
    with pytest.raises(RoundError, match="relayed as client 10002's"):
        _run("job-swap", _params(), swap, taps)
    assert _revealed(taps) == []


def test_an_arbiter_inventing_a_client_is_refused() -> None:
    """The arbiter adds a client of its own: on 62d6ef6 to every roster (honest clients sealed shares of their
    seeds and keys for it); now it can only relay a share from it, which no client accepts."""
    from nacl.bindings import crypto_box_keypair

    fake_public, _ = crypto_box_keypair()

    rosters: list[str] = []

    def invent(tag: str, value: Any, to: PartyRef) -> Any:
        if not isinstance(value, dict) or not value.get("included"):
            return value
        value = copy.deepcopy(value)
        if tag.endswith("sa.roster"):  # the roster 62d6ef6 relayed
            rosters.append(tag)
            value["ids"] = sorted([*value["ids"], "66666"])
            value["keys"]["66666"] = {"seal": bytes(fake_public), "mask": bytes(fake_public)}
        elif tag.endswith("sa.relay") and not rosters:
            value["shares"]["66666"] = m.seal(bytes(32), f"66666>{to.party_id}|".encode() + bytes(66))
        return value

    taps: dict[str, WireTap] = {}
    with pytest.raises(RoundError, match=r"66666"):
        _run("job-invent", _params(), invent, taps)
    shares = taps[ARBITER.party_id].received_as("sa.shares")
    assert all("66666" not in s for s in shares if isinstance(s, dict)), "a client sealed shares for the invented one"
    assert _revealed(taps) == []


# ---------------------------------------------------------------- the survivor list


def test_an_arbiter_naming_one_survivor_and_everyone_else_dropped_gets_no_share() -> None:
    """{survivors: [u], dropped: everyone else}: u's seed from its holders and u's pairwise seeds with everyone
    else (on 62d6ef6: everyone else's masking keys) would unmask u."""
    others = [c.party_id for c in CLIENTS if c.party_id != VICTIM]

    def one_survivor(tag: str, value: Any, to: PartyRef) -> Any:
        if tag.endswith("sa.unmask") and value.get("included"):
            value = dict(value)
            value["survivors"] = _members(value["survivors"], [VICTIM])
            value["dropped"] = _members(value["dropped"], others)
        return value

    taps: dict[str, WireTap] = {}
    with pytest.raises(RoundError, match="survivor list"):
        _run("job-one-survivor", _params(), one_survivor, taps)
    assert _revealed(taps) == [], "a client revealed shares to an arbiter that named one survivor"


def test_an_arbiter_showing_clients_different_survivor_lists_gets_no_share() -> None:
    """Each holder sees a list that passes its own checks, but no two (beyond a pair) see the same:
    the arbiter would collect u's seed from some and its pairwise seeds from others."""
    ids = sorted(c.party_id for c in CLIENTS)
    shown = {"9999": ["9999", "10000", "10002"], "10000": ["9999", "10000", "10002"],
             "10002": ["9999", "10002", "10003"], "10003": ["9999", "10000", "10003"]}  # each passes t = 3

    def tailored(tag: str, value: Any, to: PartyRef) -> Any:
        if tag.endswith("sa.unmask") and value.get("included"):
            alive = shown[to.party_id]
            value = dict(value)
            value["survivors"] = _members(value["survivors"], alive)
            value["dropped"] = _members(value["dropped"], [v for v in ids if v not in alive])
        return value

    taps: dict[str, WireTap] = {}
    with pytest.raises(RoundError, match="confirmed the survivor list"):
        _run("job-tailored", _params(), tailored, taps)
    assert _revealed(taps) == []


def test_an_explicit_threshold_of_half_the_holders_is_refused() -> None:
    """t = 2 of 4 holders: two disjoint halves could each recover a secret."""
    taps: dict[str, WireTap] = {}
    with pytest.raises(RoundError, match="must exceed half"):
        _run("job-threshold", _params(threshold=2), lambda tag, value, to: value, taps)


def test_the_overflow_check_counts_every_client_of_the_round_not_the_neighbour_group() -> None:
    """With neighbours set (groups of 3 of 4 clients), a value whose sum fits 3 summands but not 4 is
    refused: the arbiter adds every survivor's vector, not one group's."""
    from fedspark.algorithms.homo_nn import NetworkError
    from fedspark.algorithms.homo_nn._secure import arbiter_round, client_round

    params = _params(neighbours=2, frac_bits=40)
    value = 1.2e6  # limit 2^22 / 3 = 1.40e6 for a group of 3, 2^22 / 4 = 1.05e6 for the round's 4
    functions: dict[PartyRef, Any] = {
        ref: (lambda ctx, ref=ref: client_round(ctx, ref.party_id, params, lambda: (np.array([value]), 1, 0.0),
                                                n_parameters=1, round_no=0))
        for ref in CLIENTS
    }
    functions[ARBITER] = lambda ctx: arbiter_round(ctx, {c.party_id: c for c in CLIENTS}, params, 1.0)
    with pytest.raises(NetworkError, match="for 4 clients"):
        run_parties("job-overflow", functions, timeout_s=10)


# ---------------------------------------------------------------- packed Paillier


def test_a_paillier_client_handed_another_clients_ciphertext_reads_noise() -> None:
    """Every client holds the private key: an arbiter returning A's ciphertext to B as "the global model"
    must give B nothing of A's update. Also: the private key crossed sealed."""
    params = HomoNNParams.model_validate({
        **_params().model_dump(exclude={"secure"}), "rounds": 1,
        "secure": {"mode": "paillier", "key_size": 1024, "allow_insecure_key_size": True, "clip": 4.0},
        "sync": {"min_fraction": 1.0},
    })
    from fedspark.federation import PairKeys

    keys = PairKeys.dealt([c.party_id for c in [*CLIENTS, ARBITER]])
    taps: dict[str, WireTap] = {}
    functions: dict[PartyRef, Any] = {
        ref: (lambda ctx, i=i: train_client(ctx, _trainer(i, params), params, record_updates=True))
        for i, ref in enumerate(CLIENTS)
    }
    functions[GUEST] = lambda ctx: train_client(tapped(ctx, taps), _trainer(0, params), params, record_updates=True)
    functions[ARBITER] = lambda ctx: train_arbiter(tapped(ctx, taps), params)
    results = run_parties("job-paillier-leak", functions, timeout_s=60, pair_keys=keys)

    # What 10000 holds: the private key, as the key generator (the guest) sent it.
    sent = [v for tag, to, v in taps[GUEST.party_id].sent if tag.endswith("paillier.key") and to.party_id == "10000"]
    private = _private_key(sent[0], keys["10000"], "job-paillier-leak")
    assert str(private.public_key.n)[:40] not in repr(sent[0]), "the key crossed in the clear"
    # What the arbiter could hand 10000 as "the global model": the guest's own ciphertext.
    column = next(v["enc"] for tag, frm, v in taps[ARBITER.party_id].received
                  if tag.endswith("round-0.update") and frm == GUEST)
    n_parameters = results[GUEST].weights.size
    share = 40 / 160
    truth = share * results[GUEST].updates[0]
    pack = Packer(private.public_key.n, slot_bits=32, clip=params.secure.clip, summands=len(CLIENTS))
    try:
        read = pack.decrypt(private, fixed_binary_to_ints(column), n_parameters + 1)[:-1]
    except DecodingOverflow:
        read = None  # not even a well-formed packed vector
    assert read is None or np.max(np.abs(read - truth)) > 1.0, "10000 decrypted the guest's update"
    # The honest aggregate still decrypts to FedAvg (every client ends with the same model).
    assert all(np.allclose(results[c].weights, results[GUEST].weights) for c in CLIENTS)


def _private_key(message: Any, keys: Any, job: str) -> PrivateKey:
    if isinstance(message, dict):  # the primes in the clear
        return PrivateKey.from_pq(int(message["p"]), int(message["q"]))
    from fedspark.algorithms.homo_nn._paillier_agg import _decode_primes

    p, q = _decode_primes(m.unseal(keys.key("9999", f"{job}|paillier-private-key"), message))
    return PrivateKey.from_pq(p, q)
