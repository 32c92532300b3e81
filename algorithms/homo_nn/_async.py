"""Asynchronous training (FedAsync): no rounds, no barrier; each update is mixed in on arrival.

A client trains from the newest model it was given, pushes its weights with
the model version τ it started from, and receives the newest model in reply.
The arbiter mixes w ← (1 − α_t)·w + α_t·w_k with α_t = α·s(t − τ): the staler
the update (more versions behind), the less it moves the model, so a slow
client's out-of-date weights are damped instead of dragging the model back.
Updates staler than ``max_staleness`` are dropped. Every update's staleness,
weight and fate is recorded. Masking cannot hide a single mixed update, so
async runs in plaintext (the job validator refuses async with masking).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from fedspark.algorithms.homo_nn._barrier import try_get
from fedspark.algorithms.homo_nn._errors import RoundError
from fedspark.algorithms.homo_nn._params import AsyncParams, HomoNNParams
from fedspark.algorithms.homo_nn._roster import at
from fedspark.common import PartyRef
from fedspark.federation import Context

UpdateCallback = Callable[[int, dict[str, Any]], None]
LocalStep = Callable[[np.ndarray, int], tuple[np.ndarray, int, float]]
_POLL_S = 0.005


def staleness_weight(cfg: AsyncParams, staleness: int) -> float:
    """s(t − τ) of FedAsync: 1 for a fresh update, smaller the staler it is."""
    if cfg.staleness == "polynomial":
        return float((staleness + 1) ** -cfg.a)
    if cfg.staleness == "hinge":
        return 1.0 if staleness <= cfg.b else 1.0 / (cfg.a * (staleness - cfg.b) + 1.0)
    return 1.0


def _slot(ctx: Context, client: str, push: int) -> Context:
    return ctx.sub("async").sub(f"{client}-{push}")


def arbiter_async(
    ctx: Context, clients: dict[str, PartyRef], params: HomoNNParams, initial: np.ndarray,
    on_update: UpdateCallback | None = None,
) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """Mix updates as they come until ``rounds × len(clients)`` were handled; return (model, records).

    Each client's pushes after that are answered with "stop" (and not mixed), so
    every client ends after finishing the training it was doing.
    """
    cfg = params.fedasync
    weights, version = initial.copy(), 0
    pushes = dict.fromkeys(clients, 0)
    for pid, ref in clients.items():
        at(_slot(ctx, pid, 0), ref).put("model", {"weights": weights, "version": 0, "stop": False})
    budget = params.rounds * len(clients)
    records: list[dict[str, Any]] = []
    stopped: set[str] = set()
    started = time.monotonic()
    deadline = started + ctx.federation.timeout_s
    while len(stopped) < len(clients):
        progressed = False
        for pid, ref in clients.items():
            if pid in stopped:
                continue
            ok, update = try_get(_slot(ctx, pid, pushes[pid]), ref, "update")
            if not ok:
                continue
            progressed, deadline = True, time.monotonic() + ctx.federation.timeout_s
            if not isinstance(update, dict) or not isinstance(update.get("weights"), np.ndarray):
                raise RoundError(ctx.job_id, version, f"client {pid} sent a malformed async update")
            staleness = version - int(update["version"])
            record: dict[str, Any] = {"client": pid, "push": pushes[pid], "based_on": int(update["version"]),
                                      "staleness": staleness, "loss": float(update["loss"]),
                                      "seconds": time.monotonic() - started}
            if len(records) >= budget:
                record["fate"] = "after_stop"
            elif cfg.max_staleness is not None and staleness > cfg.max_staleness:
                record["fate"] = "dropped_stale"
            else:
                mix = cfg.alpha * staleness_weight(cfg, staleness)
                weights = (1.0 - mix) * weights + mix * np.asarray(update["weights"], dtype=np.float64)
                version += 1
                record.update(fate="mixed", alpha=mix, version=version)
            if record["fate"] != "after_stop":
                records.append(record)
                if on_update is not None:
                    on_update(len(records) - 1, record)
            pushes[pid] += 1
            stop = len(records) >= budget
            if stop:
                stopped.add(pid)
            at(_slot(ctx, pid, pushes[pid]), ref).put("model", {"weights": weights, "version": version, "stop": stop})
        if not progressed:
            if time.monotonic() > deadline:
                raise RoundError(ctx.job_id, version, f"no async update for {ctx.federation.timeout_s:.0f}s")
            time.sleep(_POLL_S)
    return weights, records


def client_async(ctx: Context, local_step: LocalStep) -> int:
    """Train on the newest model and push, until the arbiter says stop; returns the pushes made."""
    push = 0
    while True:
        slot = _slot(ctx, ctx.party_id, push)
        model = slot.arbiter.get("model")
        if model["stop"]:
            return push
        weights, n, loss = local_step(np.asarray(model["weights"], dtype=np.float64), push)
        slot.arbiter.put("update", {"weights": weights, "n": n, "loss": loss, "version": int(model["version"])})
        push += 1
