"""A host's side of vertical LR: features only, no labels.

Per mini-batch the host sends [[u_h]] = [[X_h·w_h]] (and, when the loss is
computed, [[Σ u_h²]]) to the guest, receives [[e]], and takes its masked
gradient round trip through the arbiter. Its weights never leave it; at the end
it sends X_h·w_h per row so the guest can score.

Before the first batch it checks what it receives rather than trusting it: the
arbiter's key must meet this party's own minimum size, and the guest's batch
plan must match the job's batch size and give no batch small enough to solve
X_Bᵀe for e (which carries the labels).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fedspark.algorithms.hetero_lr import _wire
from fedspark.algorithms.hetero_lr._alignment import agree_salt, check_alignment_host
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
    receive_public_key,
    send_partial_scores,
)
from fedspark.algorithms.hetero_lr._model import LRModelShare
from fedspark.algorithms.hetero_lr._params import HeteroLRParams
from fedspark.common import ProtocolError
from fedspark.crypto import SECURE_MIN_KEY_SIZE, FixedPoint
from fedspark.federation import Context


def train_host(
    ctx: Context,
    data: VerticalData,
    params: HeteroLRParams,
    make_compute: ComputeFactory,
    on_epoch: EpochCallback | None = None,
    record_gradients: bool = False,
    min_key_size: int = SECURE_MIN_KEY_SIZE,
) -> TrainResult:
    """Train this host's share; ``min_key_size`` is this party's own floor for the arbiter's key."""
    n = data.n_rows
    who = f"the host {ctx.party_id}"
    check_batches(ctx.job_id, who, n, params.batch_size, len(data.feature_names))
    salt = agree_salt(ctx.sub("align"))
    check_alignment_host(ctx.sub("align"), data.ids, count=n, digest=data.digest, salt=salt)
    public_key = receive_public_key(ctx.sub("setup"), min_key_size)
    compute = make_compute(public_key)
    declare_features(ctx.sub("setup"), compute.n_features)
    seed = batch_seed(params.seed, salt)
    compute.start_epoch(seed, 0, params.batch_size)
    mine = compute.plan_digest()
    ctx.sub("setup").guest.put("plan_digest", mine)
    plan = _checked_plan(ctx, ctx.sub("setup").guest.get("plan"), n, params, seed, mine)
    codec = FixedPoint(public_key.n, params.frac_bits)
    w = initial_weights(params, compute.n_features)
    result = TrainResult(model=_model(ctx, data, w))
    for epoch, ectx in ctx.iterations(params.max_iter, prefix="epoch"):
        w_at_epoch_start = w.copy()
        compute.start_epoch(seed, epoch, params.batch_size)
        batches = iter_batches(seed, epoch, n, params.batch_size)
        for batch, (_, bctx) in zip(batches, ectx.iterations(plan["n_batches"], prefix="batch")):
            u, enc_u = compute.encrypted_linear(batch, w)
            bctx.guest.put("enc_u", _wire.pack(public_key, enc_u))
            if plan["with_loss"]:
                bctx.guest.put("enc_u2_sum", public_key.encrypt(codec.encode([float(np.dot(u, u))])[0]))
            enc_e = _wire.unpack(public_key, bctx.guest.get("enc_e"), what="[[e]] from the guest",
                                 expected=len(batch.rows))
            grad = 0.25 * masked_gradient(bctx, compute, public_key, params, batch, enc_e) / len(batch.rows)
            grad += params.alpha * w
            w = apply_gradient(w, grad, params, result if record_gradients else None)
        if finish_epoch(ectx, epoch, result, params, on_epoch, weights=w, epoch_start=w_at_epoch_start,
                        with_loss=plan["with_loss"]):
            break
    result.model = _model(ctx, data, w)
    send_partial_scores(ctx.sub("predict").guest, compute.partial_scores(w))
    result.compute = compute.metrics()
    compute.release()
    return result


def _checked_plan(
    ctx: Context, plan: object, n: int, params: HeteroLRParams, seed: int, digest: str
) -> dict[str, Any]:
    """The guest's plan, if it is the one this host derives from its own rows, the job's batch size and
    the agreed seed (so the guest does not choose which rows share a batch), and puts the same rows in
    the same batches (``digest``, :func:`._batches.plan_digest`)."""
    keys = {"seed", "n_rows", "n_batches", "with_loss", "digest"}
    if not isinstance(plan, dict) or not keys <= plan.keys() or not isinstance(plan["seed"], int):
        raise ProtocolError(f"job {ctx.job_id}: the guest {ctx.guest.party.party_id} sent a malformed batch plan")
    if plan["n_rows"] != n:
        raise ProtocolError(f"job {ctx.job_id}: the guest plans {plan['n_rows']} rows, this host has {n}")
    if plan["seed"] != seed:
        raise ProtocolError(
            f"job {ctx.job_id}: the guest {ctx.guest.party.party_id} sent a batch seed that is not the agreed one"
        )
    expected = n_batches(n, params.batch_size)
    if plan["n_batches"] != expected:
        raise ProtocolError(
            f"job {ctx.job_id}: the guest {ctx.guest.party.party_id} plans {plan['n_batches']} batches per epoch; "
            f"batch_size {params.batch_size} over {n} rows gives {expected}"
        )
    if plan["digest"] != digest:
        raise ProtocolError(
            f"job {ctx.job_id}: the guest {ctx.guest.party.party_id}'s batch plan differs from this host's "
            "(another row count per batch or another row order): no batch is run"
        )
    return plan


def _model(ctx: Context, data: VerticalData, w: np.ndarray) -> LRModelShare:
    return LRModelShare(role="host", party_id=ctx.me.party_id, feature_names=list(data.feature_names), weights=w.tolist())
