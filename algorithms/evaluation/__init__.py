"""Model evaluation on the party that holds the labels."""

from fedspark.algorithms.evaluation._binary import binary_metrics

__all__ = ["binary_metrics"]
