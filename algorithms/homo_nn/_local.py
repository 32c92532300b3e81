"""A client's local training: E epochs of mini-batch SGD/Adam from the global weights.

Rows arrive block by block from a :class:`~fedspark.algorithms.homo_nn._rows.Rows`
source (a real client's table stays in Spark and reaches the driver one block
at a time), so training holds at most a shuffle buffer of rows, never the
table. Mini-batches come from that buffer: it fills with whole blocks up to
``stream.buffer_rows`` rows, is permuted with the round's seeded generator,
and hands out full batches; the leftover rows (fewer than a batch) join the
next fill. A table that fits in one buffer is thus shuffled whole each epoch,
exactly as an in-memory table. With FedProx the loss gains
(mu/2)·||w - w_global||², which keeps heterogeneous clients near the global model.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from fedspark.algorithms.homo_nn._network import as_tensor, build_network, get_vector, set_vector
from fedspark.algorithms.homo_nn._params import HomoNNParams
from fedspark.algorithms.homo_nn._rows import Block, Rows
from fedspark.algorithms.homo_nn._streamed_metrics import BinaryCounts
from fedspark.common import ConfigError

if TYPE_CHECKING:
    import torch
    from torch import nn


@dataclass
class LocalResult:
    weights: np.ndarray
    n_samples: int
    loss: float


class LocalTrainer:
    """One client's copy of the network, trained over its rows as they stream by."""

    def __init__(self, rows: Rows, params: HomoNNParams) -> None:
        import torch

        self.params = params
        self.rows = rows
        self.network = build_network(params.network, rows.n_features, params.seed)
        self.n = rows.n_rows
        if params.batch_size <= 0 and self.n > params.stream.buffer_rows:
            raise ConfigError(f"batch_size {params.batch_size} asks for one batch of the whole table ({self.n} rows), "
                              f"more than stream.buffer_rows ({params.stream.buffer_rows}) allows in memory: "
                              "set a batch_size or raise stream.buffer_rows")
        self._generator = torch.Generator().manual_seed(params.seed)

    def warm_up(self) -> None:
        """One forward and backward pass on a few zero rows, weights untouched.

        torch's first autograd step in a process is much slower than the rest;
        doing it before the first round keeps it out of round 0's deadline.
        Zeros, not the client's rows: reading a block here would cost a Spark job.
        """
        import torch

        k = max(1, min(self.n, 8))
        x = torch.zeros((k, self.rows.n_features), dtype=torch.float64)
        self.network.zero_grad()
        _loss(self.params)(self.network(x), self._targets(np.zeros(k))).backward()
        self.network.zero_grad()

    def initial_weights(self) -> np.ndarray:
        return get_vector(self.network)

    def train(self, global_weights: np.ndarray, round_no: int) -> LocalResult:
        """Train ``local_epochs`` epochs starting from ``global_weights``; return the new weights."""
        set_vector(self.network, global_weights)
        anchor = [p.detach().clone() for p in self.network.parameters()]
        optimiser = _optimiser(self.network, self.params)
        loss_fn = _loss(self.params)
        mu = self.params.proximal_mu
        batch = self.n if self.params.batch_size <= 0 else self.params.batch_size
        self._generator.manual_seed(self.params.seed * 1_000_003 + round_no)
        self.network.train()
        total, count = 0.0, 0
        for _ in range(self.params.local_epochs):
            blocks = self.rows.blocks(self._generator)
            for x, y in mini_batches(blocks, max(batch, 1), self.params.stream.buffer_rows, self._generator):
                optimiser.zero_grad()
                loss = loss_fn(self.network(as_tensor(x)), self._targets(y))
                if mu > 0:
                    prox = sum(((p - a) ** 2).sum() for p, a in zip(self.network.parameters(), anchor))
                    loss = loss + 0.5 * mu * prox
                loss.backward()
                optimiser.step()
                total += float(loss.detach()) * len(y)
                count += len(y)
        return LocalResult(get_vector(self.network), self.n, total / max(count, 1))

    def predict(self, weights: np.ndarray, x: np.ndarray) -> np.ndarray:
        return predict(self.network, weights, as_tensor(np.ascontiguousarray(x, dtype=np.float64)), self.params)

    def evaluate(self, weights: np.ndarray, rows: Rows | None = None) -> dict[str, float]:
        """Binary metrics of ``weights`` on ``rows`` (default: the training rows), scored block by block."""
        counts = BinaryCounts(self.params.decision_threshold)
        for x, y in (self.rows if rows is None else rows).blocks():
            if len(y):
                counts.add(y, self.predict(weights, x))
        return counts.metrics()

    def _targets(self, y: np.ndarray) -> torch.Tensor:
        targets = as_tensor(y)
        if self.params.network.loss == "cross_entropy":
            return targets.long()
        if self.params.network.loss == "bce" and self.params.network.outputs == 1:
            return targets.reshape(-1, 1)
        return targets


def mini_batches(blocks: Iterator[Block], batch: int, buffer_rows: int, generator: torch.Generator) -> Iterator[Block]:
    """Shuffled mini-batches from a stream of blocks through a buffer of about ``buffer_rows`` rows.

    The buffer takes whole blocks until it holds ``max(buffer_rows, batch)`` rows, is permuted,
    and yields its full batches; the rest (fewer than ``batch`` rows, already permuted) waits for
    the next fill. The last batch of an epoch may be short. One block that fits the buffer is
    permuted once and cut in order, as a whole in-memory table always was.
    """
    import torch

    limit = max(buffer_rows, batch)
    held: list[Block] = []
    rows, fresh = 0, False
    for x, y in blocks:
        if not len(y):
            continue
        held.append((x, y))
        rows, fresh = rows + len(y), True
        if rows >= limit:
            x_all, y_all = _joined(held)
            order = torch.randperm(rows, generator=generator).numpy()
            full = rows - rows % batch
            for start in range(0, full, batch):
                pick = order[start : start + batch]
                yield x_all[pick], y_all[pick]
            held = [(x_all[order[full:]], y_all[order[full:]])] if full < rows else []
            rows, fresh = rows - full, False
    if not rows:
        return
    x_all, y_all = _joined(held)
    if fresh:  # rows not yet permuted since they arrived
        order = torch.randperm(rows, generator=generator).numpy()
        for start in range(0, rows, batch):
            pick = order[start : start + batch]
            yield x_all[pick], y_all[pick]
    else:  # the permuted leftover of the last fill: one short batch
        yield x_all, y_all


def _joined(blocks: list[Block]) -> Block:
    if len(blocks) == 1:
        return blocks[0]
    return np.concatenate([b[0] for b in blocks]), np.concatenate([b[1] for b in blocks])


def predict(network: nn.Module, weights: np.ndarray, x: torch.Tensor, params: HomoNNParams) -> np.ndarray:
    """Scores: P(y=1) for ``bce``, the predicted class for ``cross_entropy``, the value for ``mse``."""
    import torch

    set_vector(network, weights)
    network.eval()
    with torch.no_grad():
        out = network(x)
        if params.network.loss == "bce":
            out = torch.sigmoid(out)
        elif params.network.loss == "cross_entropy":
            out = out.argmax(dim=1).double()
        scores: np.ndarray = out.reshape(-1).numpy()
        return scores


def _optimiser(network: nn.Module, params: HomoNNParams) -> torch.optim.Optimizer:
    import torch

    spec = params.network
    if spec.optimizer == "adam":
        return torch.optim.Adam(network.parameters(), lr=spec.learning_rate)
    return torch.optim.SGD(network.parameters(), lr=spec.learning_rate, momentum=spec.momentum)


def _loss(params: HomoNNParams) -> nn.Module:
    from torch import nn

    losses: dict[str, type[nn.Module]] = {
        "bce": nn.BCEWithLogitsLoss, "cross_entropy": nn.CrossEntropyLoss, "mse": nn.MSELoss
    }
    return losses[params.network.loss]()
