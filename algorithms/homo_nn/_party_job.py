"""One party's side of a ``homo_nn`` job: clients load their table and train, the arbiter aggregates.

Called by the engine's party process once the federation is up, with its :class:`~fedspark.algorithms.Task`. A
client's table stays persisted in its Spark executors and reaches torch one
block at a time (Spark -> Arrow -> one row-major numpy copy of the block ->
tensors over that memory), so no step holds the table in the driver; scoring
it and the test table afterwards streams the same way into counts. The rows
never leave the client. The arbiter writes ``rounds.json`` after every round (who was selected,
who reported, who was late, loss, seconds), so a run's progress is on disk
while it runs, not only at the end.
"""

from __future__ import annotations

import time
from typing import Any

from fedspark.algorithms import Task
from fedspark.algorithms.homo_nn._arbiter import train_arbiter
from fedspark.algorithms.homo_nn._client import train_client
from fedspark.algorithms.homo_nn._local import LocalTrainer
from fedspark.algorithms.homo_nn._params import HomoNNParams
from fedspark.algorithms.homo_nn._rows import TableRows
from fedspark.algorithms.homo_nn._secure import client_keys
from fedspark.common import Role
from fedspark.storage import read_table, write_json


def run_homo_nn(task: Task) -> dict[str, Any]:
    """One party's side of a ``homo_nn`` job (every role)."""
    import torch

    me, ctx, out, spark = task.me, task.ctx, task.out, task.spark

    # Small networks gain nothing from intra-op threads, and they would fight the
    # party's Spark JVM for the same cores.
    torch.set_num_threads(1)
    params: HomoNNParams = task.params
    started = time.monotonic()
    if me.role is Role.ARBITER:
        rounds: list[dict[str, Any]] = []

        def on_round(round_no: int, record: dict[str, Any]) -> None:
            rounds.append(record)
            write_json(out / "rounds.json", rounds)
            total = params.rounds * (1 + len(ctx.hosts) if params.mode == "async" else 1)  # guest and hosts
            task.emit("epoch", epoch=round_no + 1, total=total, loss=record.get("loss"),
                         unit="update" if params.mode == "async" else "round", late=record.get("late", []))

        result = train_arbiter(ctx, params, on_round=on_round)
        steps = result.updates if params.mode == "async" else result.rounds  # async: one record per update
        write_json(out / "rounds.json", steps)
        write_json(out / "late_updates.json", result.late_arrivals)
        seconds = time.monotonic() - started
        return {"role": "arbiter", "epochs": len(steps), "rounds": len(steps), "seconds": seconds,
                "seconds_per_epoch": seconds / max(len(steps), 1), "secure": params.secure.mode, "mode": params.mode,
                "n_parameters": result.n_parameters, "late_updates": len(result.late_arrivals),
                "loss_history": [r.get("loss") for r in steps]}

    assert spark is not None  # clients start one in run_party
    assert task.data is not None  # checked by the job's configuration
    table = read_table(spark, task.data, party=str(me))
    with TableRows(table, table.feature_names, params.stream, party=str(me)) as rows:
        table.unpersist()  # the blocks hold their own persisted copy
        feature_names = rows.feature_names
        trainer = LocalTrainer(rows, params)
        load_seconds = time.monotonic() - started
        history: list[dict[str, Any]] = []

        def on_client_round(round_no: int, record: dict[str, Any]) -> None:
            history.append(record)
            write_json(out / "rounds.json", history)

        started = time.monotonic()
        client = train_client(ctx, trainer, params, delay_s=task.delay_s, on_round=on_client_round,
                              record_updates=task.debug.record_gradients)
        seconds = time.monotonic() - started
        if task.debug.record_gradients:
            write_json(out / "updates.json", {"n_samples": trainer.n, "updates": [u.tolist() for u in client.updates]})
        write_json(out / "model.json", {"algorithm": "homo_nn", "network": params.network.model_dump(),
                                        "seed": params.seed, "feature_names": feature_names,
                                        "weights": client.weights.tolist()})
        metrics: dict[str, Any] = {
            "role": me.role.value, "n_rows": trainer.n, "n_features": len(feature_names),
            "epochs": params.rounds, "rounds_trained": client.rounds_trained, "rounds_skipped": client.rounds_skipped,
            "seconds": seconds, "load_seconds": load_seconds, "seconds_per_epoch": seconds / params.rounds,
            "secure": params.secure.mode, "client_keys": client_keys(ctx, params),
        }
        if params.network.loss == "bce":
            metrics.update({f"train_{k}": v for k, v in trainer.evaluate(client.weights).items()})
    if params.network.loss == "bce" and task.test_data is not None:
        test = read_table(spark, task.test_data, party=str(me))
        with TableRows(test, feature_names, params.stream, party=str(me)) as test_rows:
            test.unpersist()
            metrics.update(trainer.evaluate(client.weights, test_rows))
    return metrics
