"""The guest's side of vertical LR: it holds the labels and the intercept.

Per mini-batch the guest receives [[u_h]] from each host, forms
[[e]] = [[Σ u_h]] + u_g − 2y (y in {−1, +1}; e = 4·d of the Taylor-approximated
logistic loss), re-randomises it, sends [[e]] to the hosts, and takes its own
masked gradient round trip through the arbiter. With one host it also assembles
the encrypted batch loss for the arbiter. At the end, hosts send X_h·w_h so the
guest can score the rows.

Why re-randomise: ``sum`` and ``add_plain`` keep the randomness of the hosts'
ciphertexts, so without a fresh r^n a host divides [[e]] by the [[u_h]] it sent
and reads u_g − 2y, i.e. the labels, in plaintext.
"""

from __future__ import annotations

import math

import numpy as np

from fedspark.algorithms.hetero_lr import _wire
from fedspark.algorithms.hetero_lr._alignment import agree_salt, check_alignment_guest
from fedspark.algorithms.hetero_lr._batches import batch_seed, check_batches, iter_batches, n_batches
from fedspark.algorithms.hetero_lr._common import (
    ComputeFactory,
    EpochCallback,
    TrainResult,
    VerticalData,
    apply_gradient,
    declare_features,
    finish_epoch,
    initial_weights,
    masked_gradient,
    receive_partial_scores,
    receive_public_key,
)
from fedspark.algorithms.hetero_lr._kernels import FloatArray
from fedspark.algorithms.hetero_lr._model import LRModelShare
from fedspark.algorithms.hetero_lr._params import HeteroLRParams
from fedspark.common import DataError, ProtocolError
from fedspark.crypto import SECURE_MIN_KEY_SIZE, FixedPoint, PublicKey
from fedspark.federation import Context


def train_guest(
    ctx: Context,
    data: VerticalData,
    params: HeteroLRParams,
    make_compute: ComputeFactory,
    on_epoch: EpochCallback | None = None,
    record_gradients: bool = False,
    min_key_size: int = SECURE_MIN_KEY_SIZE,
) -> TrainResult:
    """Train the guest's share; ``min_key_size`` is this party's own floor for the arbiter's key."""
    n = data.n_rows
    if data.labels is not None:
        _check_labels(ctx, data)
    elif not data.labels_in_compute:
        raise DataError(f"job {ctx.job_id}: the guest's table has no label column; hetero_lr needs one")
    check_batches(ctx.job_id, f"the guest {ctx.party_id}", n, params.batch_size, len(data.feature_names) + 1)
    salt = agree_salt(ctx.sub("align"))
    check_alignment_guest(ctx.sub("align"), data.ids, count=n, digest=data.digest, salt=salt)
    public_key = receive_public_key(ctx.sub("setup"), min_key_size)
    compute = make_compute(public_key)  # guest features plus a constant column for the intercept
    declare_features(ctx.sub("setup"), compute.n_features)
    n_hosts = len(ctx.hosts)
    seed = batch_seed(params.seed, salt)
    compute.start_epoch(seed, 0, params.batch_size)
    plan = {"seed": seed, "n_rows": n, "n_batches": n_batches(n, params.batch_size), "with_loss": n_hosts == 1,
            "digest": compute.plan_digest()}
    ctx.sub("setup").hosts.put("plan", plan)
    ctx.sub("setup").arbiter.put("plan", plan)
    _check_host_plans(ctx, plan["digest"])

    codec = FixedPoint(public_key.n, params.frac_bits)
    w = initial_weights(params, compute.n_features)
    result = TrainResult(model=_model(ctx, data, w, params))
    for epoch, ectx in ctx.iterations(params.max_iter, prefix="epoch"):
        w_at_epoch_start = w.copy()
        compute.start_epoch(seed, epoch, params.batch_size)
        for batch, bctx in zip(iter_batches(seed, epoch, n, params.batch_size), _batch_ctxs(ectx, plan)):
            size = len(batch.rows)
            u_g = compute.linear(batch, w)
            y = 2.0 * (data.labels[batch.rows] if data.labels is not None else compute.labels(batch)) - 1.0
            host_u = [_wire.unpack(public_key, v, what=f"[[u]] from host #{i}", expected=size)
                      for i, v in enumerate(bctx.hosts.get("enc_u"))]
            enc_u = [public_key.sum(cs) for cs in zip(*host_u)]
            e_plain = codec.encode(u_g - 2.0 * y)
            enc_e = public_key.rerandomise([public_key.add_plain(c, m) for c, m in zip(enc_u, e_plain)])
            bctx.hosts.put("enc_e", _wire.pack(public_key, enc_e))
            if plan["with_loss"]:
                enc_u2 = bctx.hosts[0].get("enc_u2_sum")
                bctx.arbiter.put("enc_loss", _encrypted_loss(public_key, params, u_g, y, host_u[0], enc_u2))
            grad_sum = masked_gradient(bctx, compute, public_key, params, batch, enc_e)
            grad = 0.25 * grad_sum / size
            grad[:-1] += params.alpha * w[:-1]  # no penalty on the intercept
            w = apply_gradient(w, grad, params, result if record_gradients else None)
        if finish_epoch(ectx, epoch, result, params, on_epoch, weights=w, epoch_start=w_at_epoch_start,
                        with_loss=plan["with_loss"]):
            break

    result.model = _model(ctx, data, w, params)
    result.scores = compute.scores(w, receive_partial_scores(ctx.sub("predict"), compute.spark))
    result.compute = compute.metrics()
    result.release = compute.release  # the scores may be a DataFrame over the persisted table: read them first
    return result


def _check_host_plans(ctx: Context, mine: str) -> None:
    """Stop before the first batch when a host's rows fall into other batches than the guest's."""
    for host, theirs in zip(ctx.hosts, ctx.sub("setup").hosts.get("plan_digest")):
        if theirs != mine:
            raise ProtocolError(
                f"job {ctx.job_id}: host {host.party.party_id}'s batch plan differs from the guest's "
                "(another row count per batch or another row order): no batch is run"
            )


def _batch_ctxs(ectx: Context, plan: dict[str, int]):  # type: ignore[no-untyped-def]
    for _, bctx in ectx.iterations(plan["n_batches"], prefix="batch"):
        yield bctx


def _check_labels(ctx: Context, data: VerticalData) -> None:
    assert data.labels is not None
    labels = np.asarray(data.labels, dtype=np.float64)
    bad = ~np.isin(labels, (0.0, 1.0))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        where = f"row id={data.ids[i]}" if data.ids is not None else f"aligned row {i}"
        raise DataError(f"job {ctx.job_id}: hetero_lr needs binary labels 0/1, but {where} has label {labels[i]!r}")


def _encrypted_loss(
    public_key: PublicKey,
    params: HeteroLRParams,
    u_g: FloatArray,
    y: FloatArray,
    enc_u_h: list[int],
    enc_u2_sum: int,
) -> dict[str, object]:
    """[[Σ log2 − ½·y·u + ⅛·u²]] with u = u_g + u_h, from one host's [[u_h]] and [[Σ u_h²]].

    Expanded: Σ(log2 − ½y·u_g + ⅛u_g²) + Σ(¼u_g − ½y)·[[u_h]] + ⅛[[Σu_h²]].
    Everything carries frac_bits + x_frac_bits fractional bits.
    """
    codec = FixedPoint(public_key.n, params.frac_bits)
    plain = float(np.sum(math.log(2.0) - 0.5 * y * u_g + 0.125 * u_g**2))
    cross = public_key.dot(enc_u_h, codec.quantise(0.25 * u_g - 0.5 * y, params.x_frac_bits))
    square = public_key.mul_plain(enc_u2_sum, codec.quantise([0.125], params.x_frac_bits)[0])
    total_bits = params.frac_bits + params.x_frac_bits
    plain_encoded = codec.encode_int(codec.quantise([plain], total_bits)[0])
    enc = public_key.add_plain(public_key.add(cross, square), plain_encoded)
    # Re-randomised as every ciphertext built from a peer's: the key holder can read randomness.
    return {"enc": public_key.rerandomise([enc])[0], "frac_bits": total_bits, "count": len(u_g)}


def _model(ctx: Context, data: VerticalData, w: FloatArray, params: HeteroLRParams) -> LRModelShare:
    return LRModelShare(
        role="guest",
        party_id=ctx.me.party_id,
        feature_names=list(data.feature_names),
        weights=w[:-1].tolist(),
        intercept=float(w[-1]),
        meta={"decision_threshold": params.decision_threshold},
    )
