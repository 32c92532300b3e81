"""What a party writes under ``runs/<job_id>/<role>-<party>/``: only its own results.

A host's weights stay in the host's folder; the guest's folder holds the guest's
model share, the metrics it can compute (it holds the labels) and a short report.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fedspark.common import PartyRef


def party_dir(runs_dir: Path, job_id: str, me: PartyRef) -> Path:
    path = runs_dir / job_id / f"{me.role.value}-{me.party_id}"
    path.mkdir(parents=True, exist_ok=True)
    return path


def write_report(path: Path, me: PartyRef, job_id: str, metrics: dict[str, Any]) -> None:
    """A short human-readable summary of one party's side of the job."""
    lines = [f"# {job_id}: {me}", ""]
    transport = metrics.get("transport")
    if isinstance(transport, str) and transport.startswith("plaintext"):
        lines += [f"**Federation over plaintext gRPC ({transport}): peers were not authenticated.**", ""]
    if metrics.get("insecure_key_size"):
        lines += [f"**Insecure key size: {metrics.get('key_size')} bits (this party's --min-key-size was "
                  f"{metrics.get('min_key_size')}).**", ""]
    for key in ("transport", "epochs", "converged", "seconds", "seconds_per_epoch", "auc", "ks", "accuracy", "n_rows"):
        if key in metrics and metrics[key] is not None:
            value = metrics[key]
            lines.append(f"- {key}: {value:.4f}" if isinstance(value, float) else f"- {key}: {value}")
    losses = [x for x in metrics.get("loss_history", []) if x is not None]
    if losses:
        lines.append(f"- loss: {losses[0]:.4f} (first epoch) -> {losses[-1]:.4f} (last epoch)")
    path.write_text("\n".join(lines) + "\n")
