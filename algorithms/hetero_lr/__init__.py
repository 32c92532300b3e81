"""Vertical logistic regression with an arbiter (FATE-style, Taylor-approximated loss).

Protocol in ``_guest``, ``_host``, ``_arbiter``; per-row kernels in ``_kernels``;
where they run in ``_compute``. Algorithms see a federation ``Context`` only.
"""

from fedspark.algorithms.hetero_lr._alignment import IdsNotAligned, id_digest
from fedspark.algorithms.hetero_lr._arbiter import ArbiterResult, train_arbiter
from fedspark.algorithms.hetero_lr._common import TrainResult, VerticalData
from fedspark.algorithms.hetero_lr._compute import DriverCompute, PartyCompute, SparkCompute, compute_factory
from fedspark.algorithms.hetero_lr._guest import train_guest
from fedspark.algorithms.hetero_lr._host import train_host
from fedspark.algorithms.hetero_lr._model import LRModelShare
from fedspark.algorithms.hetero_lr._params import HeteroLRParams
from fedspark.algorithms.hetero_lr._scoring import (
    KEY,
    check_complete,
    counting_unscored,
    partial_score_batches,
    score_guest,
    score_host,
)

__all__ = [
    "ArbiterResult",
    "DriverCompute",
    "HeteroLRParams",
    "IdsNotAligned",
    "KEY",
    "LRModelShare",
    "PartyCompute",
    "SparkCompute",
    "TrainResult",
    "VerticalData",
    "check_complete",
    "counting_unscored",
    "compute_factory",
    "id_digest",
    "partial_score_batches",
    "score_guest",
    "score_host",
    "train_arbiter",
    "train_guest",
    "train_host",
]
