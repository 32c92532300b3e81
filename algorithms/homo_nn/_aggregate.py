"""The arbiter's arithmetic: FedAvg weighted by sample counts, and seeded client selection.

FedAvg minimises f(w) = Σ_k (n_k/n) F_k(w): each client's weights count in
proportion to its rows, so a client with ten times the data pulls ten times as
hard. Selection is seeded per round so a rerun of the job picks the same clients.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from fedspark.algorithms.homo_nn._params import SelectionParams


def fedavg(weights: Sequence[np.ndarray], n_samples: Sequence[int]) -> np.ndarray:
    """Σ n_k w_k / Σ n_k over the clients that reported."""
    if not weights:
        raise ValueError("FedAvg needs at least one update")
    total = float(sum(n_samples))
    if total <= 0:
        raise ValueError(f"FedAvg needs a positive sample count, got {list(n_samples)}")
    out = np.zeros_like(weights[0], dtype=np.float64)
    for w, n in zip(weights, n_samples):
        out += (float(n) / total) * w
    return out


def select_clients(clients: Sequence[str], selection: SelectionParams, round_no: int) -> list[str]:
    """``max(min_clients, ceil(fraction·K))`` clients (capped at K), drawn with a per-round seed.

    The result keeps roster order, so messages go out in a stable order.
    """
    k = len(clients)
    count = min(k, max(selection.min_clients, math.ceil(selection.fraction * k)))
    if count == k:
        return list(clients)
    rng = np.random.default_rng([selection.seed, round_no])
    chosen = set(rng.choice(k, size=count, replace=False).tolist())
    return [c for i, c in enumerate(clients) if i in chosen]


def needed_reports(selected: int, min_fraction: float) -> int:
    """How many of ``selected`` clients must report before the barrier may proceed early."""
    return max(1, min(selected, math.ceil(min_fraction * selected - 1e-9)))
