"""The arbiter's side: open rounds, run the barrier, aggregate, and keep the round record.

Per round it selects clients (seeded), sends them the global model, gathers
their updates until the barrier lets go (enough reports, or the deadline),
and replaces the global model by the FedAvg of what arrived. In secure mode
it only ever holds masked vectors and their unmasked *sum*. Every round's
record names who was selected, who reported, who was late, and which late
updates arrived afterwards and were dropped.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fedspark.algorithms.homo_nn import _secure
from fedspark.algorithms.homo_nn._aggregate import fedavg, needed_reports, select_clients
from fedspark.algorithms.homo_nn._async import arbiter_async
from fedspark.algorithms.homo_nn._barrier import LateLedger, gather
from fedspark.algorithms.homo_nn._errors import RoundError
from fedspark.algorithms.homo_nn._paillier_agg import aggregate, arbiter_key
from fedspark.algorithms.homo_nn._params import HomoNNParams
from fedspark.algorithms.homo_nn._roster import at, client_refs
from fedspark.common import PartyRef
from fedspark.crypto import PublicKey
from fedspark.federation import Context

RoundCallback = Callable[[int, dict[str, Any]], None]


@dataclass
class ArbiterResult:
    weights: Any  # the plaintext model, or (paillier) the encrypted aggregate only clients can open
    rounds: list[dict[str, Any]] = field(default_factory=list)
    late_arrivals: list[dict[str, Any]] = field(default_factory=list)
    n_parameters: int = 0
    gone: list[str] = field(default_factory=list)
    updates: list[dict[str, Any]] = field(default_factory=list)


def train_arbiter(ctx: Context, params: HomoNNParams, on_round: RoundCallback | None = None) -> ArbiterResult:
    clients = client_refs(ctx)
    hello = gather(ctx.sub("setup"), "hello", clients).values
    sizes = {pid: int(v["n_parameters"]) for pid, v in hello.items()}
    if len(set(sizes.values())) != 1:
        raise RoundError(ctx.job_id, 0, f"clients built different networks (parameters per client: {sizes})")
    result = ArbiterResult(weights=None, n_parameters=next(iter(sizes.values())))
    ledger = LateLedger()
    if params.mode == "async":
        initial = np.asarray(hello[next(iter(hello))]["initial"], dtype=np.float64)
        result.weights, result.updates = arbiter_async(ctx, clients, params, initial, on_round)
    public_key = arbiter_key(ctx, next(iter(clients.values()))) if params.secure.mode == "paillier" else None
    for round_no in range(params.rounds if params.mode == "sync" else 0):
        started = time.monotonic()
        rctx = ctx.sub(f"round-{round_no}")
        selected_ids = select_clients(list(clients), params.selection, round_no)
        rows = sum(int(hello[pid]["n_samples"]) for pid in selected_ids)
        shares = {pid: int(hello[pid]["n_samples"]) / rows for pid in selected_ids}
        for pid, party in clients.items():
            chosen = pid in selected_ids
            at(rctx, party).put("start", {"selected": chosen, "weights": result.weights if chosen else None,
                                          "share": shares.get(pid, 0.0)})
        selected = {pid: clients[pid] for pid in selected_ids}
        if params.secure.mode == "masking":
            outcome = _secure_round(rctx, selected, params, round_no)
        else:
            combine = _fedavg if public_key is None else functools.partial(_paillier_sum, public_key, selected_ids)
            outcome = _plain_round(rctx, selected, params, round_no, combine)
        ledger.expect(round_no, outcome.late_scope, outcome.late_name, outcome.late)
        if outcome.weights is not None:
            result.weights = outcome.weights
        record: dict[str, Any] = {"round": round_no, "selected": selected_ids, **outcome.record}
        record["late_arrivals"] = ledger.collect(round_no)
        record["seconds"] = time.monotonic() - started
        result.rounds.append(record)
        if on_round is not None:
            on_round(round_no, record)
    final = ctx.sub("final")
    if result.weights is None:
        raise RoundError(ctx.job_id, params.rounds, "no round produced an aggregate")
    for party in clients.values():
        at(final, party).put("model", {"weights": result.weights})
    # Wait for every client's goodbye, stragglers included: a late update still in
    # flight must find this gateway open. A client that never answers (it crashed)
    # costs one federation timeout and is recorded, not an error.
    bye = gather(final, "bye", clients, deadline_s=ctx.federation.timeout_s)
    result.gone = bye.late
    ledger.collect(params.rounds)
    result.late_arrivals = ledger.arrivals
    return result


@dataclass
class _RoundOutcome:
    weights: Any
    record: dict[str, Any]
    late_scope: Context
    late_name: str
    late: dict[str, PartyRef]


Combine = Callable[[Context, int, dict[str, Any]], tuple[Any, "float | None"]]
"""Turns the round's reported updates into the next global model (and the round's loss)."""


def _plain_round(
    rctx: Context, selected: dict[str, PartyRef], params: HomoNNParams, round_no: int, combine: Combine
) -> _RoundOutcome:
    got = gather(rctx, "update", selected, need=needed_reports(len(selected), params.sync.min_fraction),
                 deadline_s=params.sync.deadline_s)
    record: dict[str, Any] = {"reported": sorted(got.values), "late": got.late}
    outcome = _RoundOutcome(None, record, rctx, "update", {pid: selected[pid] for pid in got.late})
    if got.values:
        outcome.weights, loss = combine(rctx, round_no, got.values)
        if loss is not None:
            record["loss"] = loss
        if outcome.weights is None:
            record["aborted"] = (f"{len(got.values)} of {len(selected)} selected clients reported; packed Paillier "
                                 "masks cancel only in the sum of all of them, so the global model stays")
    return outcome


def _fedavg(rctx: Context, round_no: int, updates: dict[str, Any]) -> tuple[np.ndarray, float]:
    for pid, update in updates.items():
        if not isinstance(update, dict) or not isinstance(update.get("weights"), np.ndarray):
            raise RoundError(rctx.job_id, round_no, f"client {pid} sent a malformed update")
    ids = sorted(updates)
    counts = [int(updates[pid]["n"]) for pid in ids]
    loss = float(np.average([float(updates[pid]["loss"]) for pid in ids], weights=counts))
    return fedavg([np.asarray(updates[pid]["weights"], dtype=np.float64) for pid in ids], counts), loss


def _paillier_sum(
    public_key: PublicKey, selected: list[str], rctx: Context, round_no: int, updates: dict[str, Any]
) -> tuple[dict[str, Any] | None, None]:
    """The encrypted FedAvg, or None when a selected client is missing (its masks would not cancel);
    the arbiter cannot open it, so it records no loss."""
    return aggregate(rctx, round_no, public_key, updates, selected), None


def _secure_round(rctx: Context, selected: dict[str, PartyRef], params: HomoNNParams, round_no: int) -> _RoundOutcome:
    result = _secure.arbiter_round(rctx, selected, params, params.sync.min_fraction)
    record: dict[str, Any] = {"reported": result.reported, "late": result.late, "dropped": result.dropped}
    if result.aborted is not None:
        record["aborted"] = result.aborted
    outcome = _RoundOutcome(None, record, rctx.sub("sa"), "masked", result.late_parties)
    if result.total is not None:
        outcome.weights, _, record["loss"] = _secure.decode_total(result.total)
    return outcome
