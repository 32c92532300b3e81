"""Local training of many virtual clients as one Spark task per partition.

A pure kernel over Arrow batches (rows of ``client``, ``label`` and features,
partitioned by client): it trains every selected client found in its partition
from the round's global weights and emits one row per client — its id, row
count, mean loss and new weights as float64 bytes. The same ``LocalTrainer``
as a real client runs inside the executor, so simulation and federation train
identically.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np
import pyarrow as pa

from fedspark.algorithms.homo_nn._local import LocalTrainer
from fedspark.algorithms.homo_nn._params import HomoNNParams

UPDATE_SCHEMA = "client long, n long, loss double, weights binary"


def train_clients_kernel(
    batches: Iterable[pa.RecordBatch],
    *,
    params_json: str,
    weights: bytes,
    round_no: int,
    selected: frozenset[int],
    feature_names: list[str],
) -> Iterator[pa.RecordBatch]:
    """Train each selected client of this partition for one round (see the module docstring)."""
    import torch

    torch.set_num_threads(1)
    params = HomoNNParams.model_validate_json(params_json)
    table = pa.Table.from_batches(list(batches))
    if table.num_rows == 0:
        return
    client = table.column("client").to_numpy()
    x = np.column_stack([table.column(n).to_numpy() for n in feature_names]).astype(np.float64, copy=False)
    y = table.column("label").to_numpy().astype(np.float64, copy=False)
    global_weights = np.frombuffer(weights, dtype=np.float64)
    ids, n, loss, out = [], [], [], []
    for c in np.unique(client):
        if int(c) not in selected:
            continue
        rows = client == c
        result = LocalTrainer(x[rows], y[rows], params).train(global_weights, round_no)
        ids.append(int(c))
        n.append(result.n_samples)
        loss.append(result.loss)
        out.append(result.weights.tobytes())
    if ids:
        yield pa.RecordBatch.from_arrays(
            [pa.array(ids, pa.int64()), pa.array(n, pa.int64()), pa.array(loss, pa.float64()), pa.array(out, pa.binary())],
            names=["client", "n", "loss", "weights"],
        )
