"""The public names of fedspark.algorithms.homo_nn are pinned: changing them is an API change."""

import fedspark.algorithms.homo_nn as homo_nn


def test_exported_names() -> None:
    assert sorted(homo_nn.__all__) == [
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
    for name in homo_nn.__all__:
        assert getattr(homo_nn, name) is not None
