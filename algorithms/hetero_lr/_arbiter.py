"""The arbiter's side of vertical LR: it holds the private key and sees only masked values.

It generates the key pair, opens each party's masked gradient (uniformly random
to it), decrypts the batch losses the guest assembles, and decides convergence
on the change of the epoch loss. With several hosts there is no loss (the guest
assembles it with one host only): each party then reports ‖Δw_p‖² over the
epoch and ‖w_p‖² at its end, and convergence is the relative change of the
whole weight vector, sqrt(Σ_p ‖Δw_p‖²) / sqrt(Σ_p ‖w_p‖²) < tol.

What it refuses to decrypt: every party declares its feature count at setup,
and the arbiter opens exactly one vector of that length per party per batch,
so a party cannot hand it the [[e]] it received (the residuals, which carry the
labels) as a "gradient". A declared count that would leave a batch solvable
(see ``_batches.minimum_batch_rows``) is refused too. Hosts get the stop
decision only: a host that inflates its [[u_h]] on one row would otherwise read
that row's label from the loss.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from fedspark.algorithms.hetero_lr import _wire
from fedspark.algorithms.hetero_lr._alignment import check_alignment_arbiter
from fedspark.algorithms.hetero_lr._batches import minimum_batch_rows, smallest_batch
from fedspark.algorithms.hetero_lr._common import EpochCallback
from fedspark.algorithms.hetero_lr._params import HeteroLRParams
from fedspark.common import ProtocolError
from fedspark.crypto import (
    SECURE_MIN_KEY_SIZE,
    FixedPoint,
    InsecureKeySize,
    PrivateKey,
    PublicKey,
    generate_keypair,
)
from fedspark.federation import Context, Party


@dataclass
class ArbiterResult:
    loss_history: list[float | None] = field(default_factory=list)
    converged: bool = False
    epochs: int = 0
    key_size: int = 0
    convergence: str = "loss"
    """The stop rule: "loss" (change of the epoch loss) or "weights" (relative change of the weights)."""
    relative_change: float | None = None
    """With the "weights" rule, the last epoch's sqrt(Σ‖Δw_p‖²) / sqrt(Σ‖w_p‖²)."""

    def metrics(self) -> dict[str, Any]:
        """What the arbiter reports about training (its metrics.json)."""
        return {
            "epochs": self.epochs,
            "converged": self.converged,
            "loss_history": self.loss_history,
            "convergence": self.convergence,
            "relative_change": self.relative_change,
        }


def train_arbiter(
    ctx: Context,
    params: HeteroLRParams,
    *,
    key_size: int,
    min_key_size: int = SECURE_MIN_KEY_SIZE,
    on_epoch: EpochCallback | None = None,
) -> ArbiterResult:
    """Run the arbiter's side; a ``key_size`` below this party's own ``min_key_size`` is refused."""
    check_alignment_arbiter(ctx.sub("align"))
    if key_size < min_key_size:
        raise InsecureKeySize(key_size, min_key_size)
    public_key, private_key = generate_keypair(key_size, allow_insecure_key_size=True)
    setup = ctx.sub("setup")
    setup.guest.put("public_key", public_key.to_dict())
    setup.hosts.put("public_key", public_key.to_dict())
    parties = [setup.guest, *[setup.hosts[i] for i in range(len(setup.hosts))]]
    declared = [party.get("n_features") for party in parties]
    plan = setup.guest.get("plan")
    widths = [_checked_width(ctx, party, count, plan, params) for party, count in zip(parties, declared)]
    result = ArbiterResult(key_size=public_key.key_size, convergence="loss" if plan["with_loss"] else "weights")
    previous: float | None = None
    for epoch, ectx in ctx.iterations(params.max_iter, prefix="epoch"):
        loss_sum, count = 0.0, 0
        for _, bctx in ectx.iterations(plan["n_batches"], prefix="batch"):
            groups = [bctx.guest, *[bctx.hosts[i] for i in range(len(bctx.hosts))]]
            for group, width in zip(groups, widths):
                masked = _masked_gradient(ctx, public_key, group, width)
                group.put("opened_gradient", private_key.decrypt_many(masked))
            if plan["with_loss"]:
                batch_sum, batch_count = _open_loss(ctx, private_key, params, bctx.guest.get("enc_loss"))
                loss_sum, count = loss_sum + batch_sum, count + batch_count
        loss = loss_sum / count if plan["with_loss"] and count else None
        if plan["with_loss"]:
            converged = loss is not None and previous is not None and abs(previous - loss) < params.tol
        else:
            result.relative_change = _relative_weight_change(ctx, ectx)
            converged = result.relative_change < params.tol
        previous = loss
        ectx.guest.put("status", {"loss": loss, "converged": converged})
        ectx.hosts.put("status", {"converged": converged})
        result.loss_history.append(loss)
        result.epochs = epoch + 1
        if on_epoch is not None:
            on_epoch(epoch, loss)
        if converged and params.early_stop:
            result.converged = True
            break
    return result


def _checked_width(ctx: Context, party: Party, declared: object, plan: Any, params: HeteroLRParams) -> int:
    """A party's declared feature count, if it is a count no batch of the plan can be solved with."""
    who = f"job {ctx.job_id}: {_name(party)}"
    if not isinstance(declared, int) or isinstance(declared, bool) or declared < 1:
        raise ProtocolError(f"{who} declared {declared!r} features; expected a positive count")
    if not isinstance(plan, dict) or not isinstance(plan.get("n_rows"), int):
        raise ProtocolError(f"job {ctx.job_id}: the guest's batch plan is malformed")
    smallest = smallest_batch(plan["n_rows"], params.batch_size)
    if smallest < minimum_batch_rows(declared):
        raise ProtocolError(
            f"{who} declared {declared} features, too many for batches of {smallest} rows "
            f"(at least {minimum_batch_rows(declared)} needed): its gradient could solve for the residuals"
        )
    return declared


def _masked_gradient(ctx: Context, public_key: PublicKey, group: Party, width: int) -> list[int]:
    """One party's masked gradient, opened only if it has the length that party declared."""
    masked = _wire.unpack(public_key, group.get("masked_gradient"), what="masked gradient")
    if len(masked) != width:
        raise ProtocolError(
            f"job {ctx.job_id}: {_name(group)} sent a masked gradient of "
            f"{len(masked)} values but declared {width} features; the arbiter decrypts nothing else"
        )
    return masked


def _relative_weight_change(ctx: Context, ectx: Context) -> float:
    """sqrt(Σ_p ‖Δw_p‖²) / sqrt(Σ_p ‖w_p‖²) over every party's report for this epoch."""
    parties = [ectx.guest, *[ectx.hosts[i] for i in range(len(ectx.hosts))]]
    delta_sq, norm_sq = 0.0, 0.0
    for party in parties:
        delta, norm = _weight_report(ctx, party, party.get("weight_change"))
        delta_sq, norm_sq = delta_sq + delta, norm_sq + norm
    return math.sqrt(delta_sq) / max(math.sqrt(norm_sq), _TINY)


_TINY = 1e-12
_REPORT_KEYS = ("delta_sq", "norm_sq")


def _weight_report(ctx: Context, party: Party, report: object) -> tuple[float, float]:
    """A party's (‖Δw‖², ‖w‖²), if it is two finite, non-negative numbers."""
    def valid(value: object) -> bool:
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            return False
        try:
            return math.isfinite(value) and value >= 0
        except OverflowError:  # an int beyond any float
            return False

    if not isinstance(report, dict) or set(report) != set(_REPORT_KEYS) or not all(valid(report[k]) for k in _REPORT_KEYS):
        raise ProtocolError(
            f"job {ctx.job_id}: {_name(party)} sent a malformed weight report {report!r:.200}; "
            "expected {'delta_sq': ..., 'norm_sq': ...}, finite non-negative floats"
        )
    return float(report["delta_sq"]), float(report["norm_sq"])


def _name(party: Party) -> str:
    return f"{party.party.role.value} {party.party.party_id}"


def _open_loss(ctx: Context, private_key: PrivateKey, params: HeteroLRParams, message: object) -> tuple[float, int]:
    if not isinstance(message, dict) or not {"enc", "frac_bits", "count"} <= message.keys():
        raise ProtocolError(f"job {ctx.job_id}: the guest's encrypted loss is malformed")
    codec = FixedPoint(private_key.public_key.n, params.frac_bits)
    value = codec.decode([private_key.decrypt(int(message["enc"]))], frac_bits=int(message["frac_bits"]))[0]
    return float(value), int(message["count"])
