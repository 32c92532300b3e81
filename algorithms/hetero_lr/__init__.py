"""Vertical logistic regression with an arbiter (FATE-style, Taylor-approximated loss).

Protocol in ``_guest``, ``_host``, ``_arbiter``; per-row kernels in ``_kernels``;
where they run in ``_compute``. Algorithms see a federation ``Context`` only.
"""

from pydantic import BaseModel, ConfigDict

from fedspark.algorithms import Algorithm, register
from fedspark.algorithms.hetero_lr._alignment import IdsNotAligned, id_digest
from fedspark.algorithms.hetero_lr._arbiter import ArbiterResult, train_arbiter
from fedspark.algorithms.hetero_lr._common import TrainResult, VerticalData
from fedspark.algorithms.hetero_lr._compute import DriverCompute, PartyCompute, compute_factory
from fedspark.algorithms.hetero_lr._executor import ExecutorCompute, executor_factory
from fedspark.algorithms.hetero_lr._guest import train_guest
from fedspark.algorithms.hetero_lr._host import train_host
from fedspark.algorithms.hetero_lr._model import LRModelShare
from fedspark.algorithms.hetero_lr._params import HeteroLRParams
from fedspark.algorithms.hetero_lr._party_scoring import load_model_share, run_scoring, score_party
from fedspark.algorithms.hetero_lr._scoring import (
    KEY,
    check_complete,
    counting_unscored,
    partial_score_batches,
    score_guest,
    score_host,
)
from fedspark.algorithms.hetero_lr._training_job import run_training
from fedspark.common import Role


class ScoringParams(BaseModel):
    """``params`` of a ``hetero_lr_predict`` job: none (scoring reads ``scoring:`` and the saved model)."""

    model_config = ConfigDict(extra="forbid")


HETERO_LR = register(Algorithm(
    name="hetero_lr", params=HeteroLRParams, requires_arbiter=True, labels_at=frozenset({Role.GUEST}),
    entry_points=dict.fromkeys(Role, run_training), steps_param="max_iter",
))
HETERO_LR_PREDICT = register(Algorithm(
    name="hetero_lr_predict", params=ScoringParams, entry_points=dict.fromkeys(Role, run_scoring),
))

__all__ = [
    "ArbiterResult",
    "DriverCompute",
    "ExecutorCompute",
    "HETERO_LR",
    "HETERO_LR_PREDICT",
    "HeteroLRParams",
    "IdsNotAligned",
    "KEY",
    "LRModelShare",
    "PartyCompute",
    "ScoringParams",
    "TrainResult",
    "VerticalData",
    "check_complete",
    "counting_unscored",
    "compute_factory",
    "executor_factory",
    "id_digest",
    "load_model_share",
    "partial_score_batches",
    "run_scoring",
    "run_training",
    "score_guest",
    "score_host",
    "score_party",
    "train_arbiter",
    "train_guest",
    "train_host",
]
