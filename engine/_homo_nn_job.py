"""One party's side of a ``homo_nn`` job: clients load their table and train, the arbiter aggregates.

Called by the party process (``engine._party``) once the federation is up. A
client's rows go Spark -> Arrow -> numpy (one row-major feature copy, a view
for the label) -> torch tensors over the same memory; they never leave the
client. The arbiter writes ``rounds.json`` after every round (who was selected,
who reported, who was late, loss, seconds), so a run's progress is on disk
while it runs, not only at the end.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from fedspark.algorithms.evaluation import binary_metrics
from fedspark.algorithms.homo_nn import HomoNNParams, LocalTrainer, train_arbiter, train_client
from fedspark.common import PartyRef, Role
from fedspark.engine import _events
from fedspark.engine._config import JobConfig, TableConfig
from fedspark.engine._outputs import write_json
from fedspark.federation import Context

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


def run_homo_nn(job: JobConfig, me: PartyRef, ctx: Context, out: Path, spark: SparkSession | None) -> dict[str, Any]:
    import torch

    # Small networks gain nothing from intra-op threads, and they would fight the
    # party's Spark JVM for the same cores.
    torch.set_num_threads(1)
    params = HomoNNParams.model_validate(job.params)
    started = time.monotonic()
    if me.role is Role.ARBITER:
        rounds: list[dict[str, Any]] = []

        def on_round(round_no: int, record: dict[str, Any]) -> None:
            rounds.append(record)
            write_json(out / "rounds.json", rounds)
            total = params.rounds * (len(job.parties_with_data()) if params.mode == "async" else 1)
            _events.emit("epoch", party=str(me), epoch=round_no + 1, total=total, loss=record.get("loss"),
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
    cfg = job.party_config(me)
    assert cfg.data is not None  # checked by JobConfig
    feature_names, x, y = load_xy(spark, cfg.data, me)
    trainer = LocalTrainer(x, y, params)
    load_seconds = time.monotonic() - started
    history: list[dict[str, Any]] = []

    def on_client_round(round_no: int, record: dict[str, Any]) -> None:
        history.append(record)
        write_json(out / "rounds.json", history)

    started = time.monotonic()
    client = train_client(ctx, trainer, params, delay_s=job.delay_for(me), on_round=on_client_round,
                          record_updates=job.debug.record_gradients)
    seconds = time.monotonic() - started
    if job.debug.record_gradients:
        write_json(out / "updates.json", {"n_samples": trainer.n, "updates": [u.tolist() for u in client.updates]})
    write_json(out / "model.json", {"algorithm": "homo_nn", "network": params.network.model_dump(),
                                    "seed": params.seed, "feature_names": feature_names,
                                    "weights": client.weights.tolist()})
    metrics: dict[str, Any] = {
        "role": me.role.value, "n_rows": trainer.n, "n_features": len(feature_names),
        "epochs": params.rounds, "rounds_trained": client.rounds_trained, "rounds_skipped": client.rounds_skipped,
        "seconds": seconds, "load_seconds": load_seconds, "seconds_per_epoch": seconds / params.rounds,
    }
    if params.network.loss == "bce":
        train = binary_metrics(y, trainer.predict(client.weights), params.decision_threshold)
        metrics.update({f"train_{k}": v for k, v in train.items()})
        if cfg.test_data is not None:
            _, x_test, y_test = load_xy(spark, cfg.test_data, me, feature_names)
            metrics.update(binary_metrics(y_test, trainer.predict(client.weights, x_test), params.decision_threshold))
    return metrics


def load_xy(
    spark: SparkSession, table: TableConfig, me: PartyRef, feature_names: list[str] | None = None
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Features (one row-major copy) and labels (a zero-copy view) of one of this party's tables."""
    from fedspark.arrow_bridge import column_view, feature_matrix
    from fedspark.storage import TableSpec, read_table

    spec = TableSpec(**table.model_dump())
    arrow = read_table(spark, spec, party=str(me)).to_arrow()
    names = feature_names or [c for c in arrow.column_names if c not in ("id", "label")]
    return names, feature_matrix(arrow, names), column_view(arrow, "label")
