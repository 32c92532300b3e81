"""``fedspark bench hetero-lr --scale``: does training stay a Spark job as the table grows?

Three runs of one epoch each, every party a real process on loopback: the executor path
(``compute.backend: spark``) on a small and on a ten-times larger table, and the driver
path on the small one. Per party: peak RSS of its Python driver and of its JVM, seconds
per epoch, and (row, feature) terms per second, where an epoch's terms are
rows × (guest features + 1 + host features), the X^T[[e]] work that dominates it.

- ``ratio`` = executor terms/s on the large table ÷ driver terms/s on the small one:
  what the executor path's per-batch Spark jobs cost against keeping the table in the
  driver (target ≥ 0.8).
- ``rss_growth`` = the largest party driver's peak RSS on the executor path, large ÷
  small table: a driver that holds no table does not grow with it (target ≤ 1.3).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from fedspark.bench._hetero_lr import TrainingRun, train_synthetic, write_synthetic_tables

TARGET_RATIO = 0.8
TARGET_RSS_GROWTH = 1.3
_PARTIES = ("guest:9999", "host:10000", "arbiter:10001")


def run_hetero_lr_scale_bench(
    *, rows: int = 100_000, factor: int = 10, guest_features: int = 10, host_features: int = 40, bits: int = 1024,
    batch_size: int = 10_000, work_dir: Path | None = None,
) -> dict[str, Any]:
    large = rows * factor
    runs: dict[str, dict[str, Any]] = {}
    for name, compute, n in (("driver_small", "driver", rows), ("executors_small", "spark", rows),
                             ("executors_large", "spark", large)):
        with tempfile.TemporaryDirectory(dir=work_dir) as tmp:
            folder = Path(tmp)
            guest, host = write_synthetic_tables(folder, n, guest_features, host_features)
            run = train_synthetic(folder, guest, host, bits=bits, batch_size=batch_size, epochs=1, compute=compute)
            runs[name] = _summary(run, n, guest_features + 1 + host_features)
    small_exec, large_exec = runs["executors_small"], runs["executors_large"]
    ratio = large_exec["terms_per_s"] / runs["driver_small"]["terms_per_s"]
    biggest = max(_PARTIES[:2], key=lambda p: large_exec["parties"][p]["python_mib"])
    rss_growth = large_exec["parties"][biggest]["python_mib"] / small_exec["parties"][biggest]["python_mib"]
    return {
        "bench": "hetero-lr-scale",
        "params": {"rows": rows, "large_rows": large, "guest_features": guest_features,
                   "host_features": host_features, "bits": bits, "batch_size": batch_size, "epochs": 1,
                   "insecure_key_size": bits < 2048},
        "results": {name: {"rate": run["terms_per_s"], "unit": "(row, feature) terms/s", **run}
                    for name, run in runs.items() if name != "driver_small"},
        "baseline": {"driver_small": {"rate": runs["driver_small"]["terms_per_s"], "unit": "(row, feature) terms/s",
                                      **runs["driver_small"]}},
        "ratio": ratio,
        "rss_growth": rss_growth,
        "rss_growth_party": biggest,
        "target": {"ratio": f">= {TARGET_RATIO}", "rss_growth": f"<= {TARGET_RSS_GROWTH}"},
        "meets_target": bool(ratio >= TARGET_RATIO and rss_growth <= TARGET_RSS_GROWTH),
    }


def _summary(run: TrainingRun, rows: int, terms_per_row: int) -> dict[str, Any]:
    results = {party: _metrics(run, party) for party in _PARTIES}
    epoch_s = max(float(results[p].get("seconds_per_epoch", 0.0)) for p in _PARTIES[:2])
    parties = {}
    for party in _PARTIES:
        metrics = results[party]
        rss = run.peak_rss.get(party, {"python_mib": 0.0, "jvm_mib": 0.0})
        parties[party] = {**rss, "seconds_per_epoch": metrics.get("seconds_per_epoch"),
                          "compute": metrics.get("compute"), "table_disk_bytes": metrics.get("table_disk_bytes")}
    return {"rows": rows, "seconds_per_epoch": epoch_s, "terms_per_s": rows * terms_per_row / epoch_s,
            "whole_run_s": run.wall_s, "auc": results["guest:9999"].get("auc"), "parties": parties}


def _metrics(run: TrainingRun, party: str) -> dict[str, Any]:
    """A party's whole ``metrics.json`` (the runner's event carries a summary only)."""
    path = Path(run.result.run_dir) / party.replace(":", "-") / "metrics.json"
    return json.loads(path.read_text()) if path.is_file() else {}
