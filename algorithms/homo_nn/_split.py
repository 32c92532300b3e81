"""Non-IID splits of one table into virtual clients, for simulation.

A Dirichlet(alpha) draw per class decides what share of that class each client
gets (Hsu et al., 2019): small alpha gives each client a few dominant labels,
large alpha tends to IID. Every client gets at least ``min_rows`` rows, taken
from the largest clients, so no virtual client is empty.
"""

from __future__ import annotations

import numpy as np


def dirichlet_split(labels: np.ndarray, clients: int, alpha: float, seed: int, min_rows: int = 2) -> np.ndarray:
    """The client index (0..clients-1) of every row."""
    if clients < 1:
        raise ValueError(f"need at least one client, got {clients}")
    if len(labels) < clients * min_rows:
        raise ValueError(f"{len(labels)} rows cannot give {clients} clients {min_rows} rows each")
    rng = np.random.default_rng(seed)
    owner = np.empty(len(labels), dtype=np.int64)
    for label in np.unique(labels):
        rows = rng.permutation(np.flatnonzero(labels == label))
        shares = rng.dirichlet(np.full(clients, alpha))
        cuts = (np.cumsum(shares)[:-1] * len(rows)).astype(np.int64)
        for client, part in enumerate(np.split(rows, cuts)):
            owner[part] = client
    counts = np.bincount(owner, minlength=clients)
    for short in np.flatnonzero(counts < min_rows).tolist():
        while counts[short] < min_rows:
            donor = int(np.argmax(counts))
            row = int(np.flatnonzero(owner == donor)[0])
            owner[row] = short
            counts[donor] -= 1
            counts[short] += 1
    return owner
