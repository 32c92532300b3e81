"""Steps that guest and hosts run alike: setup, the masked gradient round trip, results."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from fedspark.algorithms.hetero_lr import _wire
from fedspark.algorithms.hetero_lr._batches import Batch
from fedspark.algorithms.hetero_lr._compute import PartyCompute
from fedspark.algorithms.hetero_lr._kernels import FloatArray
from fedspark.algorithms.hetero_lr._model import LRModelShare
from fedspark.algorithms.hetero_lr._params import HeteroLRParams
from fedspark.common import ProtocolError
from fedspark.crypto import SECURE_MIN_KEY_SIZE, FixedPoint, PublicKey, check_peer_key
from fedspark.federation import Context, Party

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

_TABLE = "table"
"""What a host sends as "u" when its partial scores follow as a distributed table."""

EpochCallback = Callable[[int, "float | None"], None]
"""Called after each epoch with (epoch, loss or None when the loss is not computed)."""

ComputeFactory = Callable[[PublicKey], PartyCompute]
"""Builds a party's compute backend once the arbiter's public key is known."""


@dataclass
class VerticalData:
    """What the protocol knows of a party's aligned rows, sorted the same way at every party.

    On the driver path: the ids and (guest) labels themselves. On the executor path they stay in
    the executors: ``ids`` is None, ``n_rows`` and ``digest`` (the salted id digest, computed by a
    Spark aggregation) stand in for them, and the labels are read per batch from the compute
    backend (``labels_in_compute``).
    """

    ids: Sequence[str] | None
    feature_names: list[str]
    labels: FloatArray | None = None
    count: int | None = None
    digest: Callable[[bytes], bytes] | None = None
    labels_in_compute: bool = False

    @property
    def n_rows(self) -> int:
        if self.count is not None:
            return self.count
        if self.ids is None:
            raise ValueError("VerticalData needs ids or a count")
        return len(self.ids)


@dataclass
class TrainResult:
    model: LRModelShare
    loss_history: list[float | None] = field(default_factory=list)
    converged: bool = False
    epochs: int = 0
    scores: FloatArray | DataFrame | None = None
    """The guest's scores of its rows: an array (driver path) or a (label, score) DataFrame (executors)."""
    gradients: list[list[float]] = field(default_factory=list)
    compute: dict[str, int] = field(default_factory=dict)
    """What the compute backend reports (the executor path: its persisted table's memory and disk)."""
    release: Callable[[], None] = lambda: None
    """Frees what the compute backend persisted, once ``scores`` have been read."""


def receive_public_key(ctx: Context, min_key_size: int = SECURE_MIN_KEY_SIZE) -> PublicKey:
    """The arbiter's public key, refused when shorter than this party's own ``min_key_size``."""
    data = ctx.arbiter.get("public_key")
    sender = f"job {ctx.job_id}: the arbiter {ctx.arbiter.party.party_id}"
    if not isinstance(data, dict) or not isinstance(data.get("n"), int):
        raise ProtocolError(f"{sender} sent a malformed public key")
    return check_peer_key(PublicKey.from_dict(data), min_key_size, sender=sender)


def declare_features(ctx: Context, n_features: int) -> None:
    """Tell the arbiter how many gradient values this party will ask it to open per batch.

    The arbiter opens nothing longer: a party that submits the [[e]] it
    received as its "gradient" would otherwise read every residual.
    """
    ctx.arbiter.put("n_features", n_features)


def initial_weights(params: HeteroLRParams, size: int) -> FloatArray:
    if params.init_std == 0:
        return np.zeros(size)
    return np.random.default_rng(params.seed).normal(0.0, params.init_std, size)


def masked_gradient(
    ctx: Context,
    compute: PartyCompute,
    public_key: PublicKey,
    params: HeteroLRParams,
    batch: Batch,
    enc_e: Sequence[int],
) -> FloatArray:
    """X^T[[e]] for this party's columns, decrypted by the arbiter under a one-time mask.

    The mask r_j is uniform in [0, n), so g_j + r_j mod n is uniform: the arbiter
    learns nothing about the gradient. Returns the plaintext sum Σ_i x_ij·e_i.
    """
    enc_grad = compute.gradient(batch, enc_e)
    masks = [secrets.randbelow(public_key.n) for _ in enc_grad]
    # Re-randomised: the key holder can extract a ciphertext's randomness, and the
    # randomness of X^T[[e]] is a function of this party's features.
    masked = public_key.rerandomise([public_key.add_plain(c, r) for c, r in zip(enc_grad, masks)])
    ctx.arbiter.put("masked_gradient", _wire.pack(public_key, masked))
    opened = ctx.arbiter.get("opened_gradient")
    if not isinstance(opened, list) or len(opened) != len(masks):
        raise ProtocolError(f"job {ctx.job_id}: the arbiter returned a malformed gradient")
    codec = FixedPoint(public_key.n, params.frac_bits)
    plain = [(int(m) - r) % public_key.n for m, r in zip(opened, masks)]
    return codec.decode(plain, frac_bits=params.frac_bits + params.x_frac_bits)


def send_partial_scores(guest: Party, partials: FloatArray | DataFrame) -> None:
    """A host's X_h·w_h for every row: an array from the driver path, a distributed table
    (``_rank``, ``_u``) from the executor path (announced first, so the guest knows which to read)."""
    if isinstance(partials, np.ndarray):
        guest.put("u", partials)
    else:
        guest.put("u", _TABLE)
        guest.put_table("u_table", partials)


def receive_partial_scores(ctx: Context, spark: SparkSession | None) -> list[FloatArray | DataFrame]:
    """Every host's partial scores, as each sent them (see :func:`send_partial_scores`)."""
    received: list[FloatArray | DataFrame] = []
    for host, value in zip(ctx.hosts, ctx.hosts.get("u")):
        if isinstance(value, str) and value == _TABLE:
            if spark is None:
                raise ProtocolError(f"job {ctx.job_id}: host {host.party.party_id} sent its partial scores as a "
                                    "table, and this guest runs without Spark")
            received.append(host.get_table("u_table", spark))
        elif isinstance(value, np.ndarray) and value.dtype == np.float64 and value.ndim == 1:
            received.append(value)
        else:
            raise ProtocolError(f"job {ctx.job_id}: host {host.party.party_id} sent malformed partial scores")
    return received


def apply_gradient(
    w: FloatArray, grad: FloatArray, params: HeteroLRParams, record: TrainResult | None
) -> FloatArray:
    """One gradient step; with ``record`` the plaintext gradient is kept (debug only, never sent)."""
    if record is not None:
        record.gradients.append(grad.tolist())
    return w - params.learning_rate * grad


def finish_epoch(
    ctx: Context,
    epoch: int,
    result: TrainResult,
    params: HeteroLRParams,
    on_epoch: EpochCallback | None,
    *,
    weights: FloatArray,
    epoch_start: FloatArray,
    with_loss: bool,
) -> bool:
    """Take the arbiter's verdict on the epoch; True when training should stop.

    Hosts receive the stop decision only; the guest also gets the epoch loss.
    Without the loss (several hosts: ``with_loss`` of the plan is False) the
    party first sends the arbiter ‖Δw‖² over the epoch (``weights`` minus
    ``epoch_start``) and ‖w‖² at its end, two floats: the arbiter judges
    convergence on the relative change of the whole weight vector.
    """
    if not with_loss:
        change = weights - epoch_start
        report = {"delta_sq": float(np.dot(change, change)), "norm_sq": float(np.dot(weights, weights))}
        ctx.arbiter.put("weight_change", report)
    status = ctx.arbiter.get("status")
    if not isinstance(status, dict) or not isinstance(status.get("converged"), bool):
        raise ProtocolError(f"job {ctx.job_id}: the arbiter {ctx.arbiter.party.party_id} sent a malformed epoch status")
    loss, converged = status.get("loss"), status["converged"]
    result.loss_history.append(loss)
    result.epochs = epoch + 1
    if on_epoch is not None:
        on_epoch(epoch, loss)
    result.converged = converged
    return converged and params.early_stop
