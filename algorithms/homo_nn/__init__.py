"""Horizontal neural networks: clients train one network locally, the arbiter averages.

Protocol in ``_client`` / ``_arbiter`` (with the barrier in ``_barrier``,
masked rounds in ``_secure`` and FedAsync in ``_async``); arithmetic in ``_aggregate`` and ``_masking``;
torch only in ``_network`` and ``_local``; a client's rows stream from Spark through ``_rows``. Algorithms see a federation
``Context`` only.
"""

from fedspark.algorithms import Algorithm, register
from fedspark.algorithms.homo_nn import _party_job
from fedspark.algorithms.homo_nn._aggregate import fedavg, needed_reports, select_clients
from fedspark.algorithms.homo_nn._arbiter import ArbiterResult, train_arbiter
from fedspark.algorithms.homo_nn._async import staleness_weight
from fedspark.algorithms.homo_nn._client import ClientResult, train_client
from fedspark.algorithms.homo_nn._errors import NetworkError, RoundError
from fedspark.algorithms.homo_nn._local import LocalResult, LocalTrainer, predict
from fedspark.algorithms.homo_nn._network import build_network, get_vector, n_parameters, set_vector
from fedspark.algorithms.homo_nn._params import (
    AsyncParams,
    HomoNNParams,
    LayerSpec,
    NetworkSpec,
    SecureParams,
    SelectionParams,
    StreamParams,
    SyncParams,
)
from fedspark.algorithms.homo_nn._roster import client_refs
from fedspark.algorithms.homo_nn._rows import ArrayRows, TableRows
from fedspark.algorithms.homo_nn._score import predict_table
from fedspark.algorithms.homo_nn._simulation import (
    SimResult,
    Simulation,
    SimulationSettings,
    SparkWorkers,
    simulate,
)
from fedspark.common import Role

HOMO_NN = register(Algorithm(
    name="homo_nn", params=HomoNNParams, requires_arbiter=True, labels_at=frozenset({Role.GUEST, Role.HOST}),
    entry_points=dict.fromkeys(Role, _party_job.run_homo_nn), steps_param="rounds", delays_itself=True,
    simulation=True,
))

__all__ = [
    "ArbiterResult",
    "ArrayRows",
    "AsyncParams",
    "ClientResult",
    "HOMO_NN",
    "HomoNNParams",
    "LayerSpec",
    "LocalResult",
    "LocalTrainer",
    "NetworkError",
    "NetworkSpec",
    "RoundError",
    "SecureParams",
    "SelectionParams",
    "SimResult",
    "Simulation",
    "SimulationSettings",
    "SparkWorkers",
    "StreamParams",
    "SyncParams",
    "TableRows",
    "build_network",
    "client_refs",
    "fedavg",
    "get_vector",
    "n_parameters",
    "needed_reports",
    "predict",
    "predict_table",
    "select_clients",
    "set_vector",
    "simulate",
    "staleness_weight",
    "train_arbiter",
    "train_client",
]
