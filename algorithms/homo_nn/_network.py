"""The network every party builds identically, and its weights as one flat float64 vector.

Aggregation, masking and the wire work on a flat vector (one Arrow/numpy array,
one mask stream), never on a module or a pickled state dict: what crosses a
party boundary is numbers only. Every party seeds ``torch`` the same way before
building, so all clients start from the same weights without any being sent.
"""

from __future__ import annotations

import importlib
import threading
import warnings
from typing import TYPE_CHECKING

import numpy as np

from fedspark.algorithms.homo_nn._errors import NetworkError
from fedspark.algorithms.homo_nn._params import NetworkSpec

if TYPE_CHECKING:
    import torch
    from torch import nn


_SEED_LOCK = threading.Lock()


def build_network(spec: NetworkSpec, n_features: int, seed: int) -> nn.Module:
    """The job's network with weights drawn from ``seed`` (the same at every party).

    torch's initialisers draw from its global generator, so seeding and building
    happen under one lock: clients built in threads (tests, simulation) would
    otherwise interleave their draws and start from different weights.
    """
    import torch

    with _SEED_LOCK:
        torch.manual_seed(seed)
        return _build(spec, n_features)


def _build(spec: NetworkSpec, n_features: int) -> nn.Module:
    from torch import nn

    if spec.factory is not None:
        return _from_factory(spec.factory, n_features)
    activations: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid}
    modules: list[nn.Module] = []
    width = n_features
    for layer in spec.layers:
        modules.append(nn.Linear(width, layer.units))
        if layer.activation != "none":
            modules.append(activations[layer.activation]())
        width = layer.units
    modules.append(nn.Linear(width, spec.outputs))
    return nn.Sequential(*modules).double()


def _from_factory(factory: str, n_features: int) -> nn.Module:
    from torch import nn

    module_name, _, function_name = factory.partition(":")
    try:
        function = getattr(importlib.import_module(module_name), function_name)
    except (ImportError, AttributeError) as exc:
        raise NetworkError(f"network factory {factory!r} cannot be imported: {exc}") from exc
    try:
        network = function(n_features)
    except TypeError:
        network = function()
    if not isinstance(network, nn.Module):
        raise NetworkError(f"network factory {factory!r} returned {type(network).__name__}, not an nn.Module")
    return network.double()


def get_vector(network: nn.Module) -> np.ndarray:
    """All parameters, in ``parameters()`` order, as one new float64 array."""
    from torch.nn.utils import parameters_to_vector

    return parameters_to_vector(network.parameters()).detach().cpu().numpy().astype(np.float64, copy=True)


def set_vector(network: nn.Module, vector: np.ndarray) -> None:
    """Load a flat vector (from ``get_vector`` or an aggregate) into the network's parameters."""
    import torch
    from torch.nn.utils import vector_to_parameters

    size = n_parameters(network)
    if vector.shape != (size,):
        raise NetworkError(f"weight vector has shape {vector.shape}, the network has {size} parameters")
    # vector_to_parameters would make the parameters views of ``vector``: training
    # would then overwrite the caller's array (the global model). Copy in.
    with torch.no_grad():
        vector_to_parameters(torch.tensor(vector, dtype=torch.float64), network.parameters())


def n_parameters(network: nn.Module) -> int:
    return int(sum(p.numel() for p in network.parameters()))


def as_tensor(array: np.ndarray) -> torch.Tensor:
    """A tensor sharing ``array``'s memory, also for read-only Arrow views.

    torch warns that it cannot protect a read-only buffer; training only reads
    features and labels, so the warning is silenced instead of copying the table.
    """
    import torch

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        return torch.from_numpy(array)
