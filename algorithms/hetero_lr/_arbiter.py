"""The arbiter's side of vertical LR: it holds the private key and sees only masked values.

It generates the key pair, opens each party's masked gradient (uniformly random
to it), decrypts the batch losses the guest assembles, and decides convergence
on the change of the epoch loss.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from fedspark.algorithms.hetero_lr import _wire
from fedspark.algorithms.hetero_lr._alignment import check_alignment_arbiter
from fedspark.algorithms.hetero_lr._common import EpochCallback
from fedspark.algorithms.hetero_lr._params import HeteroLRParams
from fedspark.common import ProtocolError
from fedspark.crypto import FixedPoint, PrivateKey, generate_keypair
from fedspark.federation import Context


@dataclass
class ArbiterResult:
    loss_history: list[float | None] = field(default_factory=list)
    converged: bool = False
    epochs: int = 0
    key_size: int = 0


def train_arbiter(
    ctx: Context,
    params: HeteroLRParams,
    *,
    key_size: int,
    allow_insecure_key_size: bool = False,
    on_epoch: EpochCallback | None = None,
) -> ArbiterResult:
    check_alignment_arbiter(ctx.sub("align"))
    public_key, private_key = generate_keypair(key_size, allow_insecure_key_size=allow_insecure_key_size)
    setup = ctx.sub("setup")
    setup.guest.put("public_key", public_key.to_dict())
    setup.hosts.put("public_key", public_key.to_dict())
    plan = setup.guest.get("plan")
    result = ArbiterResult(key_size=public_key.key_size)
    previous: float | None = None
    for epoch, ectx in ctx.iterations(params.max_iter, prefix="epoch"):
        loss_sum, count = 0.0, 0
        for _, bctx in ectx.iterations(plan["n_batches"], prefix="batch"):
            for group in [bctx.guest, *[bctx.hosts[i] for i in range(len(bctx.hosts))]]:
                masked = _wire.unpack(public_key, group.get("masked_gradient"), what="masked gradient")
                group.put("opened_gradient", private_key.decrypt_many(masked))
            if plan["with_loss"]:
                batch_sum, batch_count = _open_loss(ctx, private_key, params, bctx.guest.get("enc_loss"))
                loss_sum, count = loss_sum + batch_sum, count + batch_count
        loss = loss_sum / count if plan["with_loss"] and count else None
        converged = loss is not None and previous is not None and abs(previous - loss) < params.tol
        previous = loss
        status = {"loss": loss, "converged": converged}
        ectx.guest.put("status", status)
        ectx.hosts.put("status", status)
        result.loss_history.append(loss)
        result.epochs = epoch + 1
        if on_epoch is not None:
            on_epoch(epoch, loss)
        if converged and params.early_stop:
            result.converged = True
            break
    return result


def _open_loss(ctx: Context, private_key: PrivateKey, params: HeteroLRParams, message: object) -> tuple[float, int]:
    if not isinstance(message, dict) or not {"enc", "frac_bits", "count"} <= message.keys():
        raise ProtocolError(f"job {ctx.job_id}: the guest's encrypted loss is malformed")
    codec = FixedPoint(private_key.public_key.n, params.frac_bits)
    value = codec.decode([private_key.decrypt(int(message["enc"]))], frac_bits=int(message["frac_bits"]))[0]
    return float(value), int(message["count"])
