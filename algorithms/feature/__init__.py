"""Feature steps that run before training, each party on its own columns.

``fit_transform`` computes fill values and scaling statistics with Spark over
the party's table; ``apply_transform`` applies them as an Arrow kernel; the
fitted :class:`FeatureTransform` is saved with the party's model share and
reapplied at prediction time. Nothing here talks to another party.
"""

from fedspark.algorithms.feature._fit import apply_transform, fit_transform
from fedspark.algorithms.feature._transform import (
    FeatureTransform,
    FillStrategy,
    ScaleMethod,
    apply_transform_batches,
)

__all__ = [
    "FeatureTransform",
    "FillStrategy",
    "ScaleMethod",
    "apply_transform",
    "apply_transform_batches",
    "fit_transform",
]
