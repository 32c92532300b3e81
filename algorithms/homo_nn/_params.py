"""What a job's ``params:`` block may set for ``homo_nn``; every party validates the same block.

The network is either described layer by layer (so a job file alone defines it
and every client builds the identical architecture) or named as an importable
``module:factory`` returning an ``nn.Module``. Aggregation, client selection,
the straggler barrier and secure aggregation are separate sub-blocks so a job
states each policy explicitly.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LayerSpec(_Strict):
    """One fully connected layer; the input width of the first comes from the table."""

    units: int = Field(ge=1)
    activation: Literal["relu", "tanh", "sigmoid", "none"] = "relu"


class NetworkSpec(_Strict):
    """A multilayer perceptron: hidden ``layers`` then an output layer of ``outputs`` units.

    With ``loss: bce`` the output is one logit per row (binary labels 0/1);
    with ``cross_entropy`` one logit per class; with ``mse`` a regression value.
    """

    layers: list[LayerSpec] = Field(default_factory=list)
    outputs: int = Field(1, ge=1)
    loss: Literal["bce", "cross_entropy", "mse"] = "bce"
    optimizer: Literal["sgd", "adam"] = "sgd"
    learning_rate: float = Field(0.1, gt=0)
    momentum: float = Field(0.0, ge=0, lt=1)
    factory: str | None = Field(None, description="module:function returning an nn.Module; replaces layers")

    @model_validator(mode="after")
    def _factory_form(self) -> NetworkSpec:
        if self.factory is not None and (":" not in self.factory or self.factory.startswith(":")):
            raise ValueError(f"factory {self.factory!r} must be of the form 'module:function'")
        return self


class SelectionParams(_Strict):
    """Which clients train in a round: ``max(min_clients, ceil(fraction * K))`` of them, seeded."""

    fraction: float = Field(1.0, gt=0, le=1)
    min_clients: int = Field(1, ge=1)
    seed: int = 0


class SyncParams(_Strict):
    """The round barrier: proceed once ``min_fraction`` of the selected clients reported, or at
    ``deadline_s`` (None = wait for every selected client). Updates arriving after the barrier
    are dropped and recorded as late."""

    min_fraction: float = Field(1.0, gt=0, le=1)
    deadline_s: float | None = Field(None, gt=0)


class SecureParams(_Strict):
    """How updates are hidden from the arbiter.

    ``masking``: pairwise masks from X25519 agreements (Bonawitz et al., CCS'17)
    with Shamir-shared seeds so a client dropping out after masking is recovered.
    ``frac_bits`` is the fixed-point precision of the masked integers (mod 2^64);
    the aggregate differs from plain FedAvg by at most ``K * 2^-(frac_bits+1) / n``.
    ``threshold`` is the number of shares that recover a seed (default: a majority).
    ``paillier``: packed Paillier under a key the clients share and the arbiter lacks;
    the arbiter adds ciphertexts and never holds even the global model in plaintext
    (each plaintext carries pairwise masks, so every selected client must report).
    Unset: ``masking`` for synchronous rounds; ``none`` must be chosen explicitly.
    """

    mode: Literal["none", "masking", "paillier"] | None = None
    frac_bits: int = Field(24, ge=8, le=40)
    threshold: int | None = Field(None, ge=2)
    neighbours: int | None = Field(None, ge=2, description="masking: mask and share with this many clients "
                                   "(a circulant graph, Bell et al. CCS'20); None = with all")
    key_size: int = Field(2048, description="paillier: key size of the clients' shared key")
    allow_insecure_key_size: bool = False
    clip: float = Field(8.0, gt=0, description="paillier: |p_k·w| bound of the packed fixed-point slots")


class AsyncParams(_Strict):
    """FedAsync (Xie et al., 2019): each update is mixed in at once with weight
    alpha·s(staleness); ``polynomial`` s(x) = (x+1)^-a, ``hinge`` s(x) = 1 for x <= b else
    1/(a(x-b)+1), ``constant`` s = 1. Updates staler than ``max_staleness`` are dropped.
    The run ends after ``rounds`` × (number of clients) updates have been handled."""

    alpha: float = Field(0.6, gt=0, le=1)
    staleness: Literal["constant", "polynomial", "hinge"] = "polynomial"
    a: float = Field(0.5, ge=0)
    b: int = Field(4, ge=0)
    max_staleness: int | None = Field(None, ge=0)


class StreamParams(_Strict):
    """How a real client's rows reach torch without its table ever sitting whole in the driver.

    The table stays persisted in Spark, split by a hash of the id into blocks of
    about ``block_rows`` rows; the driver fetches one block at a time as Arrow, in
    an order reshuffled every epoch from the job's seed, and draws mini-batches
    from a shuffle buffer of ``buffer_rows`` rows. A table of at most
    ``buffer_rows`` rows is kept after its first pass and shuffled whole, as an
    in-memory table. The simulation's virtual clients (rows already in their
    Spark task) do not use it.
    """

    block_rows: int = Field(50_000, ge=1)
    buffer_rows: int = Field(100_000, ge=1)


class HomoNNParams(_Strict):
    network: NetworkSpec = Field(default_factory=NetworkSpec)
    rounds: int = Field(10, ge=1)
    local_epochs: int = Field(1, ge=1)
    batch_size: int = Field(32, description="rows per local mini-batch; -1 = the whole table")
    strategy: Literal["fedavg", "fedprox"] = "fedavg"
    mu: float = Field(0.0, ge=0, description="FedProx proximal weight (strategy: fedprox)")
    selection: SelectionParams = Field(default_factory=SelectionParams)
    mode: Literal["sync", "async"] = "sync"
    sync: SyncParams = Field(default_factory=SyncParams)
    fedasync: AsyncParams = Field(default_factory=AsyncParams)
    secure: SecureParams = Field(default_factory=SecureParams)
    stream: StreamParams = Field(default_factory=StreamParams)
    seed: int = Field(0, description="seed of the initial weights (identical at every party) and batch order")
    decision_threshold: float = Field(0.5, gt=0, lt=1)

    @model_validator(mode="after")
    def _prox(self) -> HomoNNParams:
        if self.strategy == "fedprox" and self.mu <= 0:
            raise ValueError("strategy fedprox needs mu > 0")
        if self.mode == "async" and self.secure.mode != "none":
            raise ValueError("mode async mixes each single update into the model as it arrives, so the arbiter "
                             "sees every client's update in the clear and no masking can hide it: set "
                             "secure.mode: none explicitly to accept that, or use mode: sync (masked by default)")
        if self.secure.mode is None:
            self.secure.mode = "masking"  # sync rounds hide each update from the arbiter unless told otherwise
        if self.secure.mode == "paillier" and self.sync.min_fraction < 1.0:
            raise ValueError("secure.mode paillier masks each update with pairwise masks that cancel only in the "
                             "sum of every selected client: set sync.min_fraction: 1.0, or use secure.mode masking, "
                             "which recovers clients that drop out")
        return self

    @property
    def proximal_mu(self) -> float:
        return self.mu if self.strategy == "fedprox" else 0.0
