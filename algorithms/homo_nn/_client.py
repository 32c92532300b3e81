"""A client's side of horizontal training: take the global model, train locally, send the update.

The client never sends data, and in secure mode never a readable update. It
follows the arbiter's rounds; when it falls behind (a straggler whose update
came too late), it skips straight to the newest round the arbiter has opened
instead of training on stale rounds one after another.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fedspark.algorithms.homo_nn import _secure
from fedspark.algorithms.homo_nn._aggregate import select_clients
from fedspark.algorithms.homo_nn._async import client_async
from fedspark.algorithms.homo_nn._barrier import try_get
from fedspark.algorithms.homo_nn._errors import RoundError
from fedspark.algorithms.homo_nn._local import LocalTrainer
from fedspark.algorithms.homo_nn._paillier_agg import (
    check_share,
    client_key,
    decrypt_global,
    encrypt_update,
    packer,
    require_pair_keys,
    round_masks,
)
from fedspark.algorithms.homo_nn._params import HomoNNParams
from fedspark.algorithms.homo_nn._roster import client_refs
from fedspark.crypto import PrivateKey
from fedspark.federation import Context

RoundCallback = Callable[[int, dict[str, Any]], None]
"""Called after each round with (round, this party's record of it)."""


@dataclass
class ClientResult:
    weights: np.ndarray
    history: list[dict[str, Any]] = field(default_factory=list)
    rounds_trained: int = 0
    rounds_skipped: int = 0
    updates: list[np.ndarray] = field(default_factory=list)


def train_client(
    ctx: Context,
    trainer: LocalTrainer,
    params: HomoNNParams,
    *,
    delay_s: float = 0.0,
    on_round: RoundCallback | None = None,
    drop_after_sharing: int | None = None,
    record_updates: bool = False,
) -> ClientResult:
    """Follow the arbiter's rounds until it sends the final model.

    ``delay_s`` stalls each local training (``debug.delay_s``: a straggler);
    ``drop_after_sharing`` makes the client vanish in that masked round after it
    shared its seeds (a dropout, for tests of recovery); ``record_updates`` keeps
    each plaintext local update in the result (debug: wire tests compare them
    with what the arbiter received; they are never sent).
    """
    me = ctx.party_id
    trainer.warm_up()
    n_parameters = trainer.initial_weights().size
    hello: dict[str, Any] = {"n_samples": trainer.n, "n_parameters": n_parameters}
    if params.mode == "async":
        hello["initial"] = trainer.initial_weights()  # the seeded start, identical at every client
    ctx.sub("setup").arbiter.put("hello", hello)
    result = ClientResult(weights=trainer.initial_weights())
    opener = _Opener(ctx, params, n_parameters)
    if params.mode == "async":

        def local_step(w: np.ndarray, push: int) -> tuple[np.ndarray, int, float]:
            if delay_s > 0:
                time.sleep(delay_s)
            out = trainer.train(w, push)
            result.history.append({"push": push, "loss": out.loss})
            if on_round is not None:
                on_round(push, result.history[-1])
            return out.weights, out.n_samples, out.loss

        result.rounds_trained = client_async(ctx, local_step)
    round_no = 0
    while round_no < (params.rounds if params.mode == "sync" else 0):
        rctx = ctx.sub(f"round-{round_no}")
        start = rctx.arbiter.get("start")
        skipped = _newest_round(ctx, params, round_no)
        if skipped is not None:
            result.rounds_skipped += skipped[0] - round_no
            round_no, start = skipped
            rctx = ctx.sub(f"round-{round_no}")
        record: dict[str, Any] = {"round": round_no, "selected": bool(start["selected"])}
        if start["selected"]:
            weights = result.weights if start.get("weights") is None else opener.open(start["weights"])

            def local_update(
                w: np.ndarray = weights, r: int = round_no, record: dict[str, Any] = record
            ) -> tuple[np.ndarray, int, float]:
                if delay_s > 0:
                    time.sleep(delay_s)
                out = trainer.train(w, r)
                record["loss"] = out.loss
                if record_updates:
                    result.updates.append(out.weights)
                return out.weights, out.n_samples, out.loss

            if params.secure.mode == "masking":
                vanish = drop_after_sharing == round_no
                record["included"] = _secure.client_round(rctx, me, params, local_update, n_parameters=n_parameters,
                                                          round_no=round_no, vanish_after_sharing=vanish)
                if vanish:
                    return result
            else:
                new, n, loss = local_update()
                rctx.arbiter.put("update", opener.seal(round_no, start.get("share"), new, n, loss))
            result.rounds_trained += 1
        result.history.append(record)
        if on_round is not None:
            on_round(round_no, record)
        round_no += 1
    final = ctx.sub("final").arbiter.get("model")
    if not isinstance(final, dict) or not isinstance(final.get("weights"), (np.ndarray, dict)):
        raise RoundError(ctx.job_id, params.rounds, "the arbiter's final model is malformed")
    result.weights = opener.open(final["weights"])
    ctx.sub("final").arbiter.put("bye", {"rounds_trained": result.rounds_trained})
    return result


class _Opener:
    """How this client reads the global model and writes its update: in the clear, or (paillier)
    encrypted under the clients' shared key, which the arbiter never holds, and masked so that
    only the sum over every selected client decrypts to anything."""

    def __init__(self, ctx: Context, params: HomoNNParams, n_parameters: int) -> None:
        self.ctx, self.params, self.n_parameters = ctx, params, n_parameters
        self.key: PrivateKey | None = None
        if params.secure.mode == "paillier":
            clients = list(client_refs(ctx).values())
            self.key = client_key(ctx, clients, params)
            self.pack = packer(self.key.public_key, params, len(clients))

    def open(self, model: Any) -> np.ndarray:
        if self.key is None:
            return np.asarray(model, dtype=np.float64)
        try:
            return decrypt_global(self.key, self.pack, model, self.n_parameters)[0]
        except ValueError as exc:
            raise RoundError(self.ctx.job_id, -1, f"{self.ctx.party_id} cannot open the arbiter's model: {exc}") from exc

    def seal(self, round_no: int, share: Any, weights: np.ndarray, n: int, loss: float) -> dict[str, Any]:
        if self.key is None:
            return {"weights": weights, "n": n, "loss": loss}
        pair_keys = require_pair_keys(self.ctx, "secure.mode paillier")
        selected = select_clients(list(client_refs(self.ctx)), self.params.selection, round_no)
        public = self.key.public_key
        masks = round_masks(pair_keys, self.ctx.party_id, selected, self.params, self.ctx.job_id, round_no, public.n,
                            self.pack.plaintexts_for(self.n_parameters + 1))
        share = check_share(self.ctx, round_no, share)
        return {"enc": encrypt_update(public, self.pack, share, weights, loss, masks)}


def _newest_round(ctx: Context, params: HomoNNParams, current: int) -> tuple[int, dict[str, Any]] | None:
    """If later rounds were already opened (this client fell behind), the newest one; never waits."""
    found: tuple[int, dict[str, Any]] | None = None
    for later in range(current + 1, params.rounds):
        ok, start = try_get(ctx.sub(f"round-{later}"), ctx.arbiter.party, "start")
        if not ok:
            break
        found = (later, start)
    return found
