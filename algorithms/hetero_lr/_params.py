"""Hyper-parameters of vertical logistic regression, shared by every party of a job."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class HeteroLRParams(BaseModel):
    """What a job's ``params:`` block may set for ``hetero_lr``.

    ``frac_bits`` is the one fixed-point precision of the job (values of u and d);
    ``x_frac_bits`` quantises features for X^T[[d]]: 16 bits keep the gradient
    error far below the learning-rate noise while exponents stay short.
    """

    model_config = ConfigDict(extra="forbid")

    learning_rate: float = Field(0.15, gt=0)
    alpha: float = Field(0.01, ge=0, description="L2 penalty")
    max_iter: int = Field(20, ge=1, description="epochs")
    batch_size: int = Field(-1, description="rows per mini-batch; -1 = the whole table")
    tol: float = Field(1e-4, ge=0, description="stop when the epoch loss changes less than this")
    early_stop: bool = True
    init_std: float = Field(0.0, ge=0, description="weights start at 0, or N(0, init_std)")
    seed: int | None = Field(None, description="seed for weight init and batch order; None = random")
    frac_bits: int = Field(32, ge=8, le=64)
    x_frac_bits: int = Field(16, ge=4, le=24)
    decision_threshold: float = Field(0.5, gt=0, lt=1)
