"""Attacks on vertical LR training, each by the party that receives the message (issue 17).

Every test runs the real protocol (guest, host(s), arbiter over the in-memory
transport, real Paillier keys); the attacker is an honest party's code behind
a :class:`~wire_tap.WireTap` that reads or rewrites what crosses its wire.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import numpy as np
import pandas as pd
import pytest
from wire_tap import WireTap, tapped

from fedspark.algorithms.hetero_lr import (
    HeteroLRParams,
    VerticalData,
    compute_factory,
    train_arbiter,
    train_guest,
    train_host,
)
from fedspark.arrow_bridge import fixed_binary_to_ints, ints_to_fixed_binary
from fedspark.common import ConfigError, PartyRef, ProtocolError, Role
from fedspark.crypto import FixedPoint, PeerKeyTooSmall, PublicKey
from fedspark.federation.loopback import run_parties

GUEST, ARBITER = PartyRef(Role.GUEST, "9999"), PartyRef(Role.ARBITER, "10001")
HOSTS = [PartyRef(Role.HOST, "10000"), PartyRef(Role.HOST, "10002")]
KEY_BITS = 1024  # test-sized; every party's own floor is lowered to it explicitly


def _breast(test_data: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    guest = pd.read_csv(test_data / "breast_hetero_guest.csv").sort_values("id")
    host = pd.read_csv(test_data / "breast_hetero_host.csv").sort_values("id")
    assert guest["id"].tolist() == host["id"].tolist()
    xg = guest.drop(columns=["id", "y"]).to_numpy(np.float64)
    return xg, guest["y"].to_numpy(np.float64), host.drop(columns=["id"]).to_numpy(np.float64), guest["id"].astype(str).tolist()


def _synthetic(n: int, seed: int = 4) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    rng = np.random.default_rng(seed)
    xg, xh = rng.normal(size=(n, 2)), rng.normal(size=(n, 2))
    y = (rng.random(n) < 1 / (1 + np.exp(-(xg[:, 0] - xh[:, 1])))).astype(np.float64)
    return xg, y, xh, [f"id{i}" for i in range(n)]


def _train(
    xg: np.ndarray, y: np.ndarray, host_blocks: list[np.ndarray], ids: list[str], params: HeteroLRParams,
    taps: dict[str, WireTap], *, rewrites: dict[str, Any] | None = None, key_bits: int = KEY_BITS,
    floors: dict[str, int] | None = None,
) -> dict[PartyRef, Any]:
    """Train with every party behind a wire tap; ``floors`` are the parties' own minimum key sizes."""
    rewrites, floors = rewrites or {}, floors or {}

    def floor(party: PartyRef) -> int:
        return floors.get(party.party_id, key_bits)

    guest_data = VerticalData(ids, [f"g{j}" for j in range(xg.shape[1])], y)
    functions: dict[PartyRef, Any] = {
        GUEST: lambda ctx: train_guest(
            tapped(ctx, taps, rewrites.get(GUEST.party_id)), guest_data, params,
            compute_factory(xg, params, intercept=True), min_key_size=floor(GUEST),
        ),
    }
    for host, block in zip(HOSTS, host_blocks):
        data = VerticalData(ids, [f"h{j}" for j in range(block.shape[1])])
        functions[host] = lambda ctx, host=host, block=block, data=data: train_host(
            tapped(ctx, taps, rewrites.get(host.party_id)), data, params,
            compute_factory(block, params, intercept=False), min_key_size=floor(host),
        )
    functions[ARBITER] = lambda ctx: train_arbiter(
        tapped(ctx, taps, rewrites.get(ARBITER.party_id)), params, key_size=key_bits, min_key_size=floor(ARBITER),
    )
    return run_parties("job-attack", functions, timeout_s=300)


def _public_key(tap: WireTap) -> PublicKey:
    return PublicKey.from_n(tap.received_as("public_key")[0]["n"])


def _quotients(host_taps: list[WireTap]) -> tuple[PublicKey, list[list[int]]]:
    """Per batch, [[e]] divided by the colluding hosts' pooled [[Σ u_h]]: what they can compute."""
    public_key = _public_key(host_taps[0])
    ns = public_key.nsquare
    sent_u = [[fixed_binary_to_ints(v) for v in tap.sent_as("enc_u")] for tap in host_taps]
    quotients = []
    for b, enc_e in enumerate(fixed_binary_to_ints(v) for v in host_taps[0].received_as("enc_e")):
        pooled = [1] * len(enc_e)
        for host_u in sent_u:
            pooled = [p * c % ns for p, c in zip(pooled, host_u[b])]
        quotients.append([e * pow(p, -1, ns) % ns for e, p in zip(enc_e, pooled)])
    return public_key, quotients


def _decoded_as_plaintext(public_key: PublicKey, quotient: list[int]) -> np.ndarray:
    """Read each quotient q as if it were 1 + m·n, as the attacker would, scaled into [-1, 1]."""
    n = public_key.n
    signed = [m - n if m > n // 2 else m for m in (((q - 1) // n) % n for q in quotient)]
    top = max(1, max(abs(m) for m in signed))
    return np.array([m / top for m in signed], dtype=np.float64)  # scaled: correlation ignores scale


BREAST = HeteroLRParams(max_iter=1, batch_size=240, seed=7, early_stop=False)


@pytest.mark.parametrize("hosts", [1, 2], ids=["one_host", "two_colluding_hosts"])
def test_host_dividing_its_own_u_out_of_e_gets_no_plaintext(test_data: Path, hosts: int) -> None:
    """[[e]] / [[Σ u_h]] is never of the form 1 + m·n: the guest re-randomised [[e]]."""
    xg, y, xh, ids = _breast(test_data)
    taps: dict[str, WireTap] = {}
    _train(xg, y, np.array_split(xh, hosts, axis=1), ids, BREAST, taps)
    public_key, quotients = _quotients([taps[h.party_id] for h in HOSTS[:hosts]])
    assert sum(len(q) for q in quotients) == len(y)  # every row of the epoch was attacked
    plaintext_like = [q for batch in quotients for q in batch if (q - 1) % public_key.n == 0]
    assert not plaintext_like, f"{len(plaintext_like)} rows of [[e]] divide down to a plaintext"


def test_quotient_decoded_as_plaintext_is_uncorrelated_with_labels() -> None:
    """On 100,000 rows, what the host decodes from [[e]] / [[u_h]] tells it nothing about the labels."""
    n = 100_000
    xg, y, xh, ids = _synthetic(n)
    params = HeteroLRParams(max_iter=1, batch_size=-1, seed=1, early_stop=False)
    taps: dict[str, WireTap] = {}
    _train(xg, y, [xh], ids, params, taps)
    public_key, (quotient,) = _quotients([taps[HOSTS[0].party_id]])
    decoded = _decoded_as_plaintext(public_key, quotient)
    correlation = abs(float(np.corrcoef(decoded, y)[0, 1]))
    assert correlation < 5 / np.sqrt(n), f"|corr(decoded quotient, labels)| = {correlation:.4f}"


def test_host_submitting_e_as_its_gradient_gets_nothing_decrypted(test_data: Path) -> None:
    """A host hands the arbiter the [[e]] it received as its 'masked gradient': the arbiter refuses it."""
    xg, y, xh, ids = _breast(test_data)
    taps: dict[str, WireTap] = {}
    attacker = HOSTS[0].party_id

    def rewrite(tag: str, value: object) -> object:
        return taps[attacker].received_as("enc_e")[-1] if tag.endswith("masked_gradient") else value

    with pytest.raises(ProtocolError, match=r"host 10000 sent a masked gradient of 240 values but declared 20"):
        _train(xg, y, [xh], ids, BREAST, taps, rewrites={attacker: rewrite})
    opened = taps[attacker].received_as("opened_gradient")
    assert not opened, f"the arbiter decrypted {len(opened[0])} residuals for the host"


def test_host_declaring_a_batch_sized_feature_count_is_refused(test_data: Path) -> None:
    """A host that claims as many features as a batch has rows (to make [[e]] pass as its gradient) is refused."""
    xg, y, xh, ids = _breast(test_data)
    taps: dict[str, WireTap] = {}

    def rewrite(tag: str, value: object) -> object:
        return 240 if tag.endswith("n_features") else value

    with pytest.raises(ProtocolError, match=r"host 10000 declared 240 features, too many for batches of 240 rows"):
        _train(xg, y, [xh], ids, BREAST, taps, rewrites={HOSTS[0].party_id: rewrite})


def test_host_crafting_u_reads_no_label_from_the_loss(test_data: Path) -> None:
    """A host sends [[u_h]] = K on one row, 0 elsewhere, and would read that row's label from the loss.

    With zero initial weights the epoch loss is log 2 − y_r·K/(2n) + K²/(8n): the
    sign of y_r falls out. Hosts must receive the stop decision only.
    """
    xg, y, xh, ids = _breast(test_data)
    params = HeteroLRParams(max_iter=1, batch_size=-1, seed=7, early_stop=False)
    n, row, big = len(y), 17, 64.0
    taps: dict[str, WireTap] = {}
    attacker = HOSTS[0].party_id

    def rewrite(tag: str, value: object) -> object:
        if not tag.endswith(("enc_u", "enc_u2_sum")):
            return value
        public_key = _public_key(taps[attacker])
        codec = FixedPoint(public_key.n, params.frac_bits)
        if tag.endswith("enc_u2_sum"):
            return public_key.encrypt(codec.encode([big * big])[0])
        crafted = np.zeros(n)
        crafted[row] = big
        return ints_to_fixed_binary(public_key.encrypt_many(codec.encode(crafted)), public_key.ciphertext_width)

    _train(xg, y, [xh], ids, params, taps, rewrites={attacker: rewrite})
    statuses = taps[attacker].received_as("status")
    losses = [s.get("loss") for s in statuses if isinstance(s, dict)]
    assert statuses and all(loss is None for loss in losses), f"the host received losses {losses}"
    recovered = [1.0 if (np.log(2) + big**2 / (8 * n) - loss) > 0 else 0.0 for loss in losses if loss is not None]
    assert recovered != [y[row]]


def test_guest_planning_solvable_batches_is_refused_by_the_host() -> None:
    """Mini-batches of no more rows than max(d + 1, 100) let a party solve X_Bᵀe = g for e: hosts refuse them.

    The guest (3 columns) accepts batches of 110 rows; the host, with 120 features, needs 122.
    """
    xg, y, xh, ids = _synthetic(250)
    wide = np.tile(xh, 60)  # 120 host features
    params = HeteroLRParams(max_iter=1, batch_size=110, seed=1)  # batches of 110 and 140 rows
    with pytest.raises(ConfigError, match=r"the host 10000 refuses mini-batches of 110 rows \(batch_size 110.*at least 122 rows"):
        _train(xg, y, [wide], ids, params, {})


def test_guest_sending_a_plan_with_more_batches_is_refused_by_the_host() -> None:
    """The host derives the plan itself from its rows and the job's batch size; a guest's other plan stops it."""
    xg, y, xh, ids = _synthetic(600)
    params = HeteroLRParams(max_iter=1, batch_size=200, seed=1)

    def rewrite(tag: str, value: object) -> object:
        return {**value, "n_batches": 6} if tag.endswith("plan") and isinstance(value, dict) else value

    with pytest.raises(ProtocolError, match=r"the guest 9999 plans 6 batches per epoch; batch_size 200 over 600"):
        _train(xg, y, [xh], ids, params, {}, rewrites={GUEST.party_id: rewrite})


def test_guest_choosing_the_batch_seed_is_refused_by_the_host() -> None:
    """Without a job seed the batch order comes from the commit-reveal salt: a guest cannot pick which rows meet."""
    xg, y, xh, ids = _synthetic(600)
    params = HeteroLRParams(max_iter=1, batch_size=200)

    def rewrite(tag: str, value: object) -> object:
        return {**value, "seed": 12345} if tag.endswith("plan") and isinstance(value, dict) else value

    with pytest.raises(ProtocolError, match=r"the guest 9999 sent a batch seed that is not the agreed one"):
        _train(xg, y, [xh], ids, params, {}, rewrites={GUEST.party_id: rewrite})


def test_arbiter_sending_a_short_key_is_refused_by_guest_and_host() -> None:
    """The arbiter picks the key; every other party checks it against its own floor, not the job's."""
    xg, y, xh, ids = _synthetic(300)
    params = HeteroLRParams(max_iter=1, batch_size=-1, seed=1)
    floors = {GUEST.party_id: 2048, HOSTS[0].party_id: 2048, ARBITER.party_id: 512}
    with pytest.raises(PeerKeyTooSmall, match=r"the arbiter 10001 sent a 512-bit Paillier key.*under 2048 bits"):
        _train(xg, y, [xh], ids, params, {}, key_bits=512, floors=floors)


@pytest.mark.parametrize(
    ("tag", "forged", "message"),
    [
        ("public_key", {"n": "not a number"}, r"the arbiter 10001 sent a malformed public key"),
        ("status", {"loss": 0.1}, r"the arbiter 10001 sent a malformed epoch status"),
    ],
    ids=["public_key", "status"],
)
def test_an_arbiter_sending_malformed_values_is_named(tag: str, forged: object, message: str) -> None:
    xg, y, xh, ids = _synthetic(300)
    params = HeteroLRParams(max_iter=1, batch_size=-1, seed=1)

    def rewrite(sent_tag: str, value: object) -> object:
        return forged if sent_tag.endswith(tag) else value

    with pytest.raises(ProtocolError, match=message):
        _train(xg, y, [xh], ids, params, {}, rewrites={ARBITER.party_id: rewrite})


def test_a_job_file_cannot_lower_the_key_floor(tmp_path: Path) -> None:
    from fedspark.engine import load_job

    job = tmp_path / "job.yaml"
    job.write_text(
        "name: j\nparties: {guest: {party_id: '1', data: {uri: a.csv, label_column: y}}, hosts: [{party_id: '2', data: {uri: b.csv}}],"
        " arbiter: {party_id: '3'}}\nsecurity: {key_size: 512, allow_insecure_key_size: true}\n"
    )
    with pytest.raises(ConfigError, match=r"job\.yaml.*allow_insecure_key_size is no longer a job setting"):
        load_job(job)


@pytest.mark.parametrize(
    "forged",
    [{"delta_sq": -1.0, "norm_sq": 4.0}, {"delta_sq": float("nan"), "norm_sq": 4.0}, {"delta_sq": 0.5},
     {"delta_sq": "0.5", "norm_sq": 4.0}, [0.5, 4.0], {"delta_sq": 10**400, "norm_sq": 4.0}],
    ids=["negative", "nan", "missing", "string", "list", "huge_int"],
)
def test_a_malformed_weight_report_is_refused_naming_party_and_job(forged: object) -> None:
    """With two hosts the arbiter judges convergence on the weights: it takes only finite, non-negative floats."""
    xg, y, xh, ids = _synthetic(300)
    params = HeteroLRParams(max_iter=2, batch_size=-1, seed=1)

    def rewrite(tag: str, value: object) -> object:
        return forged if tag.endswith("weight_change") else value

    with pytest.raises(ProtocolError, match=r"job job-attack: host 10002 sent a malformed weight report"):
        _train(xg, y, np.array_split(xh, 2, axis=1), ids, params, {}, rewrites={HOSTS[1].party_id: rewrite})


@pytest.mark.parametrize("hosts", [1, 2], ids=["one_host", "two_hosts"])
def test_the_arbiter_gets_weight_norms_only_without_the_loss(hosts: int) -> None:
    """One host: the loss decides and no weight report is sent. Two hosts: each party sends exactly
    ‖Δw‖² and ‖w‖² of its own weights per epoch, and the arbiter stops on their relative change."""
    xg, y, xh, ids = _synthetic(300)
    params = HeteroLRParams(max_iter=3, batch_size=-1, seed=1, early_stop=False)
    taps: dict[str, WireTap] = {}
    results = _train(xg, y, np.array_split(xh, hosts, axis=1), ids, params, taps)
    arbiter = results[ARBITER]
    reports = taps[ARBITER.party_id].received_as("weight_change")
    if hosts == 1:
        assert reports == [] and arbiter.convergence == "loss" and arbiter.relative_change is None
        return
    assert arbiter.convergence == "weights" and len(reports) == 3 * params.max_iter
    sent = {p.party_id: cast(list[dict[str, float]], taps[p.party_id].sent_as("weight_change")) for p in (GUEST, *HOSTS)}
    assert all(len(r) == params.max_iter and all(set(e) == {"delta_sq", "norm_sq"} for e in r) for r in sent.values())
    final = [r[-1] for r in sent.values()]
    w = np.concatenate([results[GUEST].model.weights, [results[GUEST].model.intercept],
                        *[results[h].model.weights for h in HOSTS]])
    assert sum(r["norm_sq"] for r in final) == pytest.approx(float(w @ w))
    expected = np.sqrt(sum(r["delta_sq"] for r in final) / sum(r["norm_sq"] for r in final))
    assert arbiter.relative_change == pytest.approx(expected)
