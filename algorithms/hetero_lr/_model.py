"""A party's share of a trained vertical LR model: only its own columns' weights."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np


@dataclass
class LRModelShare:
    """Weights for this party's features; the guest's share also holds the intercept."""

    role: str
    party_id: str
    feature_names: list[str]
    weights: list[float]
    intercept: float | None = None
    meta: dict[str, object] = field(default_factory=dict)

    def save(self, path: Path) -> None:
        path.write_bytes(self.to_bytes())

    @classmethod
    def load(cls, path: Path) -> LRModelShare:
        return cls.from_bytes(path.read_bytes())

    def to_bytes(self) -> bytes:
        """The share as JSON, for ``fedspark.storage.write_file`` (any file system) or a local file."""
        return json.dumps(asdict(self), indent=2).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> LRModelShare:
        return cls(**json.loads(data))

    @property
    def weight_vector(self) -> np.ndarray:
        return np.asarray(self.weights, dtype=np.float64)
