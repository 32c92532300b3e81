"""Model evaluation on the party that holds the labels: numpy arrays, or a scored DataFrame in Spark."""

from fedspark.algorithms.evaluation._binary import binary_metrics
from fedspark.algorithms.evaluation._frame import binary_metrics_frame

__all__ = ["binary_metrics", "binary_metrics_frame"]
