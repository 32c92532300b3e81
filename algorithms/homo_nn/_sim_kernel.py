"""Local training of many virtual clients as one Spark task per partition.

A pure kernel over Arrow batches (rows of ``client``, ``label`` and features,
partitioned by client): it trains every selected client found in its partition
from the round's global weights and emits one row per client — its id, row
count, mean loss and new weights as float64 bytes. The same ``LocalTrainer``
as a real client runs inside the executor, so simulation and federation train
identically. With packed Paillier (``paillier_n`` given) each client also
encrypts its update in the executor, as a real client would on its own
machine, and the row carries the ciphertexts (fixed-width, concatenated)
instead of the weights, which then never reach the driver in the clear.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator

import numpy as np
import pyarrow as pa

from fedspark.algorithms.homo_nn._local import LocalTrainer
from fedspark.algorithms.homo_nn._params import HomoNNParams
from fedspark.algorithms.homo_nn._rows import ArrayRows
from fedspark.crypto import PublicKey

UPDATE_SCHEMA = "client long, n long, loss double, weights binary"


def train_clients_kernel(
    batches: Iterable[pa.RecordBatch],
    *,
    params_json: str,
    weights: bytes,
    round_no: int,
    selected: frozenset[int],
    feature_names: list[str],
    paillier_n: int | None = None,
    shares: dict[int, float] | None = None,
    clients: int = 1,
    masks: dict[int, list[tuple[int, bytes]]] | None = None,
) -> Iterator[pa.RecordBatch]:
    """Train each selected client of this partition for one round (see the module docstring).

    ``shares`` (paillier) are the clients' FedAvg weights n_k / Σ n told by the
    arbiter; ``clients`` sizes the packing headroom as at a real client; ``masks`` are each
    client's pairwise Paillier mask seeds (from its pair keys), expanded here.
    """
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
        result = LocalTrainer(ArrayRows(x[rows], y[rows]), params).train(global_weights, round_no)
        ids.append(int(c))
        n.append(result.n_samples)
        loss.append(result.loss)
        if paillier_n is None:
            out.append(result.weights.tobytes())
        else:
            share = (shares or {}).get(int(c), 0.0)
            out.append(_encrypted(paillier_n, params, clients, share, result.weights, result.loss,
                                  (masks or {})[int(c)]))
    if ids:
        yield pa.RecordBatch.from_arrays(
            [pa.array(ids, pa.int64()), pa.array(n, pa.int64()), pa.array(loss, pa.float64()), pa.array(out, pa.binary())],
            names=["client", "n", "loss", "weights"],
        )


def _encrypted(n: int, params: HomoNNParams, clients: int, share: float, weights: np.ndarray, loss: float,
               seeds: list[tuple[int, bytes]]) -> bytes:
    """Enc(p_k·w_k ‖ p_k·loss + masks) packed, as the concatenated fixed-width ciphertexts."""
    from fedspark.algorithms.homo_nn._paillier_agg import encrypt_update, masks_from_seeds, packer

    public_key = _public_key(n)
    pack = packer(public_key, params, clients)
    masks = masks_from_seeds(seeds, n, pack.plaintexts_for(weights.size + 1))
    column = encrypt_update(public_key, pack, share, weights, loss, masks)
    data: bytes = column.buffers()[1].to_pybytes()
    return data[: len(column) * public_key.ciphertext_width]


@functools.lru_cache(maxsize=4)
def _public_key(n: int) -> PublicKey:
    """One key object per Python worker: its obfuscator table takes ~0.4 s to build, and
    Spark reuses workers across tasks and rounds. Each obfuscator is still drawn fresh."""
    return PublicKey.from_n(n)
