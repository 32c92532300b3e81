"""homo_nn's protocol over the in-memory transport: FedAvg, the straggler barrier, and masked
rounds whose unmasked sum must equal plain FedAvg to within the quantisation bound."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
torch.set_num_threads(1)  # tiny networks: intra-op threads only oversubscribe the shared cores

from fedspark.algorithms.homo_nn import (  # noqa: E402
    ArrayRows,
    HomoNNParams,
    LocalTrainer,
    fedavg,
    select_clients,
    train_arbiter,
    train_client,
)
from fedspark.common import PartyRef, Role  # noqa: E402
from fedspark.federation.loopback import run_parties  # noqa: E402

ARBITER = PartyRef(Role.ARBITER, "10001")
CLIENTS = [PartyRef(Role.GUEST, "9999"), PartyRef(Role.HOST, "10000"), PartyRef(Role.HOST, "10002")]


def _data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4))
    y = (x @ [1.0, -1.0, 0.5, 0.0] + 0.3 * rng.normal(size=n) > 0).astype(np.float64)
    return x, y


def _params(**overrides: Any) -> HomoNNParams:
    base: dict[str, Any] = {
        "network": {"layers": [{"units": 4, "activation": "tanh"}], "learning_rate": 0.3},
        "rounds": 3, "local_epochs": 1, "batch_size": 16, "seed": 5, "secure": {"mode": "none"},
    }
    base.update(overrides)
    return HomoNNParams.model_validate(base)


def _run(
    params: HomoNNParams, clients: list[PartyRef], sizes: list[int], timeout_s: float = 60, **client_kwargs: dict[str, Any]
) -> dict[PartyRef, Any]:
    functions: dict[PartyRef, Any] = {}
    for i, (ref, n) in enumerate(zip(clients, sizes)):
        x, y = _data(n, seed=i)
        kwargs = client_kwargs.get(ref.party_id, {})
        functions[ref] = lambda ctx, x=x, y=y, kwargs=kwargs: train_client(ctx, LocalTrainer(ArrayRows(x, y), params), params, **kwargs)
    functions[ARBITER] = lambda ctx: train_arbiter(ctx, params)
    return run_parties("job-homo", functions, timeout_s=timeout_s)


def _reference(params: HomoNNParams, sizes: list[int], rounds_members: list[list[int]]) -> np.ndarray:
    """FedAvg computed in one process: each round, the listed clients train from the global model."""
    trainers = [LocalTrainer(ArrayRows(*_data(n, seed=i)), params) for i, n in enumerate(sizes)]
    w = trainers[0].initial_weights()
    for round_no, members in enumerate(rounds_members):
        outs = [trainers[i].train(w, round_no) for i in members]
        w = fedavg([o.weights for o in outs], [o.n_samples for o in outs])
    return w


def test_plain_fedavg_equals_in_process_fedavg() -> None:
    params = _params()
    sizes = [60, 30]
    results = _run(params, CLIENTS[:2], sizes)
    arbiter = results[ARBITER]
    expected = _reference(params, sizes, [[0, 1]] * params.rounds)
    np.testing.assert_allclose(arbiter.weights, expected, rtol=0, atol=1e-12)
    for ref in CLIENTS[:2]:
        np.testing.assert_array_equal(results[ref].weights, arbiter.weights)
    assert [r["reported"] for r in arbiter.rounds] == [["10000", "9999"]] * params.rounds
    assert all(r["late"] == [] for r in arbiter.rounds)


def test_masked_aggregate_equals_fedavg_within_quantisation_bound() -> None:
    params = _params(secure={"mode": "masking", "frac_bits": 24})
    sizes = [50, 30, 20]
    arbiter = _run(params, CLIENTS, sizes)[ARBITER]
    expected = _reference(params, sizes, [[0, 1, 2]] * params.rounds)
    # Per round each client's n·w is rounded by at most 2^-(f+1); divided by n = Σ n_k. Errors
    # then propagate through later rounds' training, so allow a small factor on top of the bound.
    bound = len(sizes) * 2.0 ** -(params.secure.frac_bits + 1) / sum(sizes)
    assert np.max(np.abs(arbiter.weights - expected)) <= 50 * bound
    assert all(r["dropped"] == [] and "aborted" not in r for r in arbiter.rounds)


def test_masked_round_survives_a_dropout_after_sharing() -> None:
    params = _params(secure={"mode": "masking"}, sync={"deadline_s": 1.0})
    sizes = [40, 30, 20]
    # The vanished client never says goodbye: the arbiter waits one (short) federation timeout.
    results = _run(params, CLIENTS, sizes, timeout_s=5, **{"10002": {"drop_after_sharing": 1}})
    arbiter = results[ARBITER]
    assert arbiter.gone == ["10002"]
    assert arbiter.rounds[1]["dropped"] == ["10002"] and arbiter.rounds[1]["reported"] == ["10000", "9999"]
    assert arbiter.rounds[2]["reported"] == ["10000", "9999"]
    expected = _reference(params, sizes, [[0, 1, 2], [0, 1], [0, 1]])
    assert np.max(np.abs(arbiter.weights - expected)) <= 1e-5


def test_straggler_rounds_end_at_the_deadline_and_late_updates_are_recorded() -> None:
    params = _params(rounds=3, sync={"deadline_s": 0.4})
    started = time.monotonic()
    results = _run(params, CLIENTS[:2], [40, 40], **{"10000": {"delay_s": 1.5}})
    arbiter = results[ARBITER]
    for record in arbiter.rounds:
        assert record["late"] == ["10000"] and record["reported"] == ["9999"]
        assert record["seconds"] < 1.0, record
    assert {a["client"] for a in arbiter.late_arrivals} == {"10000"}
    assert all(a["round"] < a["seen_in_round"] or a["seen_in_round"] == params.rounds for a in arbiter.late_arrivals)
    # Only the fast client's updates count: the global model is its FedAvg alone.
    np.testing.assert_allclose(arbiter.weights, _reference(params, [40, 40], [[0]] * 3), atol=1e-12)
    assert results[CLIENTS[1]].rounds_skipped >= 1
    assert time.monotonic() - started < 3 * 1.5 + 5


def test_min_fraction_lets_a_round_proceed_before_the_deadline() -> None:
    params = _params(rounds=2, sync={"min_fraction": 0.5, "deadline_s": 30})
    started = time.monotonic()
    arbiter = _run(params, CLIENTS[:2], [40, 40], **{"10000": {"delay_s": 1.0}})[ARBITER]
    assert all(r["reported"] == ["9999"] for r in arbiter.rounds)
    assert all(r["seconds"] < 0.9 for r in arbiter.rounds)
    assert time.monotonic() - started < 10


def test_fedprox_pulls_towards_the_global_model() -> None:
    x, y = _data(80, seed=1)
    plain, prox = _params(), _params(strategy="fedprox", mu=5.0)
    w0 = LocalTrainer(ArrayRows(x, y), plain).initial_weights()
    far = LocalTrainer(ArrayRows(x, y), plain).train(w0, 0).weights
    near = LocalTrainer(ArrayRows(x, y), prox).train(w0, 0).weights
    assert np.linalg.norm(near - w0) < np.linalg.norm(far - w0)


def test_selection_is_seeded_and_respects_minimum() -> None:
    from fedspark.algorithms.homo_nn import SelectionParams

    ids = [f"c{i}" for i in range(10)]
    sel = SelectionParams(fraction=0.3, min_clients=2, seed=4)
    first = [select_clients(ids, sel, r) for r in range(5)]
    assert first == [select_clients(ids, sel, r) for r in range(5)]
    assert all(len(s) == 3 for s in first) and len({tuple(s) for s in first}) > 1
    assert len(select_clients(ids, SelectionParams(fraction=0.05, min_clients=2), 0)) == 2


def test_network_from_an_importable_factory(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from fedspark.algorithms.homo_nn import NetworkError, build_network, n_parameters

    (tmp_path / "my_nets.py").write_text(
        "from torch import nn\n"
        "def wide(n_features):\n    return nn.Sequential(nn.Linear(n_features, 7), nn.ReLU(), nn.Linear(7, 1))\n"
        "def not_a_module():\n    return 3\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    params = _params(network={"factory": "my_nets:wide"})
    assert n_parameters(build_network(params.network, 4, seed=1)) == 4 * 7 + 7 + 7 + 1
    x, y = _data(30, seed=0)
    assert LocalTrainer(ArrayRows(x, y), params).train(LocalTrainer(ArrayRows(x, y), params).initial_weights(), 0).n_samples == 30
    with pytest.raises(NetworkError, match="my_nets:not_a_module"):
        build_network(_params(network={"factory": "my_nets:not_a_module"}).network, 4, seed=1)
    with pytest.raises(NetworkError, match="cannot be imported"):
        build_network(_params(network={"factory": "my_nets:missing"}).network, 4, seed=1)


def _accuracy(params: HomoNNParams, weights: np.ndarray) -> float:
    x, y = _data(400, seed=99)
    scores = LocalTrainer(ArrayRows(x, y), params).predict(weights, x)
    return float(np.mean((scores >= 0.5) == (y == 1)))


def test_async_beats_sync_wall_time_with_a_slow_client_and_damps_stale_updates() -> None:
    slow = {"10000": {"delay_s": 0.5}, "9999": {"delay_s": 0.1}}
    sync_params = _params(rounds=6)
    started = time.monotonic()
    sync = _run(sync_params, CLIENTS[:2], [60, 60], **slow)[ARBITER]
    sync_s = time.monotonic() - started
    async_params = _params(rounds=6, mode="async", fedasync={"alpha": 0.6, "staleness": "polynomial", "a": 0.5})
    started = time.monotonic()
    fedasync = _run(async_params, CLIENTS[:2], [60, 60], **slow)[ARBITER]
    async_s = time.monotonic() - started
    assert async_s < sync_s, (async_s, sync_s)
    assert _accuracy(async_params, fedasync.weights) >= 0.85 and _accuracy(sync_params, sync.weights) >= 0.85
    mixed = [u for u in fedasync.updates if u["fate"] == "mixed"]
    assert len(fedasync.updates) == 12 and len(mixed) == 12
    stale = [u for u in mixed if u["client"] == "10000"]
    assert stale and all(u["staleness"] >= 1 for u in stale)
    assert all(u["alpha"] == pytest.approx(0.6 * (u["staleness"] + 1) ** -0.5) for u in mixed)
    assert max(u["alpha"] for u in stale) < 0.6  # damped: a stale update moves the model less


def test_async_drops_updates_beyond_the_staleness_bound() -> None:
    params = _params(rounds=10, mode="async", fedasync={"max_staleness": 1, "staleness": "hinge", "a": 1.0, "b": 0})
    arbiter = _run(params, CLIENTS[:2], [40, 40], **{"10000": {"delay_s": 0.5}, "9999": {"delay_s": 0.05}})[ARBITER]
    dropped = [u for u in arbiter.updates if u["fate"] == "dropped_stale"]
    assert dropped and all(u["client"] == "10000" and u["staleness"] > 1 for u in dropped)
    assert all(u["staleness"] <= 1 for u in arbiter.updates if u["fate"] == "mixed")


def test_paillier_aggregate_equals_fedavg_and_the_arbiter_holds_only_ciphertexts() -> None:
    import pyarrow as pa

    params = _params(secure={"mode": "paillier", "key_size": 1024, "allow_insecure_key_size": True, "clip": 4.0})
    sizes = [50, 30, 20]
    results = _run(params, CLIENTS, sizes)
    arbiter = results[ARBITER]
    assert isinstance(arbiter.weights["enc"], pa.FixedSizeBinaryArray)  # the arbiter's "model" is ciphertext
    expected = _reference(params, sizes, [[0, 1, 2]] * params.rounds)
    from fedspark.crypto import Packer

    step = Packer(2**1023, slot_bits=32, clip=4.0, summands=3).step
    for ref in CLIENTS:
        assert np.max(np.abs(results[ref].weights - expected)) <= 50 * 3 * step


def test_masking_with_neighbourhoods_survives_a_dropout() -> None:
    from fedspark.algorithms.homo_nn._secure import neighbours

    ids = ["a", "b", "c", "d", "e", "f"]
    assert neighbours(ids, "a", 2) == ["b", "f"] and neighbours(ids, "a", None) == ids[1:]
    assert all(("a" in neighbours(ids, v, 2)) == (v in neighbours(ids, "a", 2)) for v in ids[1:])  # symmetric
    clients = [*CLIENTS, PartyRef(Role.HOST, "10003"), PartyRef(Role.HOST, "10004"), PartyRef(Role.HOST, "10005")]
    params = _params(rounds=2, secure={"mode": "masking", "neighbours": 4}, sync={"deadline_s": 1.0})
    sizes = [30, 25, 20, 15, 10, 20]
    arbiter = _run(params, clients, sizes, timeout_s=5, **{"10003": {"drop_after_sharing": 1}})[ARBITER]
    assert arbiter.rounds[1]["dropped"] == ["10003"] and "aborted" not in arbiter.rounds[1]
    expected = _reference(params, sizes, [[0, 1, 2, 3, 4, 5], [0, 1, 2, 4, 5]])
    assert np.max(np.abs(arbiter.weights - expected)) <= 1e-5


def _masking_clients(params: HomoNNParams) -> dict[PartyRef, Any]:
    from fedspark.algorithms.homo_nn._secure import client_round

    update = (np.zeros(3), 1, 0.0)
    return {ref: (lambda ctx, ref=ref: client_round(ctx, ref.party_id, params, lambda: update, n_parameters=3,
                                                    round_no=0)) for ref in CLIENTS}


def test_a_client_refuses_a_share_that_does_not_open_under_its_senders_pair_key() -> None:
    from fedspark.algorithms.homo_nn import RoundError
    from fedspark.algorithms.homo_nn import _masking as m
    from fedspark.algorithms.homo_nn._roster import at

    params = _params(secure={"mode": "masking"})

    def arbiter(ctx: Any) -> None:  # relays 10002's share to 9999 sealed under a key of its own
        s = ctx.sub("sa")
        shares = {ref.party_id: at(s, ref).get("shares") for ref in CLIENTS}
        for ref in CLIENTS:
            boxes = {u: sent[ref.party_id] for u, sent in shares.items() if u != ref.party_id}
            if ref.party_id == "9999":
                boxes["10002"] = m.seal(bytes(32), b"10002>9999|" + bytes(66))
            at(s, ref).put("relay", {"included": True, "shares": boxes})

    with pytest.raises(RoundError, match="relayed as client 10002's does not open under 10002's pair key"):
        run_parties("job-substituted", {**_masking_clients(params), ARBITER: arbiter}, timeout_s=10)


def test_a_client_refuses_a_share_relayed_from_outside_the_round() -> None:
    from fedspark.algorithms.homo_nn import RoundError
    from fedspark.algorithms.homo_nn._roster import at

    params = _params(secure={"mode": "masking"})

    def arbiter(ctx: Any) -> None:  # a share from a party that is not in the round
        s = ctx.sub("sa")
        for ref in CLIENTS:
            at(s, ref).get("shares")
            at(s, ref).put("relay", {"included": True, "shares": {"10009": b"\x00" * 80}})

    with pytest.raises(RoundError, match="relayed a share from 10009, who is not in "):
        run_parties("job-outsider", {**_masking_clients(params), ARBITER: arbiter}, timeout_s=10)


def test_synchronous_rounds_are_masked_unless_told_otherwise_and_async_must_say_none() -> None:
    assert HomoNNParams.model_validate({}).secure.mode == "masking"
    assert HomoNNParams.model_validate({"secure": {"mode": "none"}}).secure.mode == "none"
    with pytest.raises(ValueError, match="the arbiter sees every client's update in the clear"):
        HomoNNParams.model_validate({"mode": "async"})
    assert HomoNNParams.model_validate({"mode": "async", "secure": {"mode": "none"}}).mode == "async"
    with pytest.raises(ValueError, match="min_fraction: 1.0"):
        HomoNNParams.model_validate({"secure": {"mode": "paillier"}, "sync": {"min_fraction": 0.5}})


def test_masking_without_pair_keys_is_refused() -> None:
    """A party with no sealing material cannot tell a client's shares from the arbiter's: it refuses."""
    from fedspark.algorithms.homo_nn import RoundError
    from fedspark.algorithms.homo_nn._secure import arbiter_round, client_round

    params = _params(secure={"mode": "masking"})
    functions: dict[PartyRef, Any] = {
        ref: (lambda ctx, ref=ref: client_round(ctx, ref.party_id, params, lambda: (np.zeros(3), 1, 0.0),
                                                n_parameters=3, round_no=0)) for ref in CLIENTS
    }
    functions[ARBITER] = lambda ctx: arbiter_round(ctx, {c.party_id: c for c in CLIENTS}, params, 1.0)
    with pytest.raises(RoundError, match="has no pair keys"):
        run_parties("job-no-pair-keys", functions, timeout_s=10, pair_keys=False)
