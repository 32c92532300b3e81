"""A client's local training: E epochs of mini-batch SGD/Adam from the global weights.

Features and labels arrive as numpy arrays (views over the party's Arrow
table) and become tensors over the same memory; mini-batches are index
selections, so the table is never copied per epoch. With FedProx the loss gains
(mu/2)·||w - w_global||², which keeps heterogeneous clients near the global model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from fedspark.algorithms.homo_nn._network import as_tensor, build_network, get_vector, set_vector
from fedspark.algorithms.homo_nn._params import HomoNNParams

if TYPE_CHECKING:
    import torch
    from torch import nn


@dataclass
class LocalResult:
    weights: np.ndarray
    n_samples: int
    loss: float


class LocalTrainer:
    """Holds one client's data as tensors and its copy of the network."""

    def __init__(self, x: np.ndarray, y: np.ndarray, params: HomoNNParams) -> None:
        import torch

        self.params = params
        self.network = build_network(params.network, x.shape[1], params.seed)
        self.x = as_tensor(np.ascontiguousarray(x, dtype=np.float64))
        targets = as_tensor(np.ascontiguousarray(y, dtype=np.float64))
        if params.network.loss == "cross_entropy":
            targets = targets.long()
        elif params.network.loss == "bce" and params.network.outputs == 1:
            targets = targets.reshape(-1, 1)
        self.y = targets
        self.n = int(x.shape[0])
        self._generator = torch.Generator().manual_seed(params.seed)

    def warm_up(self) -> None:
        """One forward and backward pass on a few rows, weights untouched.

        torch's first autograd step in a process is much slower than the rest;
        doing it before the first round keeps it out of round 0's deadline.
        """
        rows = slice(0, min(self.n, 8))
        self.network.zero_grad()
        _loss(self.params)(self.network(self.x[rows]), self.y[rows]).backward()
        self.network.zero_grad()

    def initial_weights(self) -> np.ndarray:
        return get_vector(self.network)

    def train(self, global_weights: np.ndarray, round_no: int) -> LocalResult:
        """Train ``local_epochs`` epochs starting from ``global_weights``; return the new weights."""
        import torch

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
            order = torch.randperm(self.n, generator=self._generator)
            for start in range(0, self.n, batch):
                rows = order[start : start + batch]
                optimiser.zero_grad()
                loss = loss_fn(self.network(self.x[rows]), self.y[rows])
                if mu > 0:
                    prox = sum(((p - a) ** 2).sum() for p, a in zip(self.network.parameters(), anchor))
                    loss = loss + 0.5 * mu * prox
                loss.backward()
                optimiser.step()
                total += float(loss.detach()) * len(rows)
                count += len(rows)
        return LocalResult(get_vector(self.network), self.n, total / max(count, 1))

    def predict(self, weights: np.ndarray, x: np.ndarray | None = None) -> np.ndarray:
        return predict(self.network, weights, self.x if x is None else as_tensor(x), self.params)


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
