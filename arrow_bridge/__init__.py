"""The only place Spark and Python exchange data: Arrow batches, never pickled rows.

- :func:`map_in_arrow` runs a pure :data:`ArrowKernel` on the executors;
  :func:`collect_arrow` brings a small result to the driver as a table.
- :func:`column_view` and :func:`feature_matrix` turn columns into numpy
  (a zero-copy view, or exactly one documented copy).
- :func:`ints_to_fixed_binary` / :func:`fixed_binary_to_ints` /
  :func:`as_fixed_binary` carry big integers (Paillier ciphertexts) as
  fixed-width big-endian binary columns.
- :func:`arrow_column` computes one column with a kernel, the other columns
  staying in the JVM.
- :func:`with_row_index` numbers rows in their current order;
  :func:`in_key_order` puts rows in an order every party holding the same ids
  reproduces (:func:`order_key`, :func:`buckets_for`, :func:`bucket_offsets`),
  so rows pair across parties by position.
- :func:`score_batches` is the scoring kernel: ``sigmoid(b + X·w)`` (or the
  plain linear term) over numpy views of the feature columns.
"""

from fedspark.arrow_bridge._binary import as_fixed_binary, fixed_binary_to_ints, ints_to_fixed_binary
from fedspark.arrow_bridge._errors import ArrowBridgeError, BinaryWidthError, ColumnViewError
from fedspark.arrow_bridge._mapping import ArrowKernel, ColumnKernel, arrow_column, collect_arrow, map_in_arrow
from fedspark.arrow_bridge._numpy import column_view, feature_matrix
from fedspark.arrow_bridge._row_index import (
    ORDER_CELLS,
    bucket_offsets,
    buckets_for,
    in_key_order,
    order_cell,
    order_key,
    with_row_index,
)
from fedspark.arrow_bridge._scoring import score_batches

__all__ = [
    "ArrowBridgeError",
    "ArrowKernel",
    "BinaryWidthError",
    "ColumnKernel",
    "ColumnViewError",
    "ORDER_CELLS",
    "arrow_column",
    "as_fixed_binary",
    "bucket_offsets",
    "buckets_for",
    "collect_arrow",
    "column_view",
    "feature_matrix",
    "fixed_binary_to_ints",
    "in_key_order",
    "ints_to_fixed_binary",
    "map_in_arrow",
    "order_cell",
    "order_key",
    "score_batches",
    "with_row_index",
]
