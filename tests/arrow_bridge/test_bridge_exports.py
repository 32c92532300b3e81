"""The public names of fedspark.arrow_bridge are pinned: changing them is an API change."""

import fedspark.arrow_bridge as bridge


def test_exported_names() -> None:
    assert sorted(bridge.__all__) == [
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
    for name in bridge.__all__:
        assert getattr(bridge, name) is not None
