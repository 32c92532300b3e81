"""read_table on FATE's public breast tables: plain path, file:// URI, Parquet copy and round trip."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from fedspark.arrow_bridge import column_view, feature_matrix
from fedspark.storage import PartyTable, TableError, TableProblem, TableSpec, read_table

GUEST_FEATURES = [f"x{i}" for i in range(10)]
HOST_FEATURES = [f"x{i}" for i in range(20)]


@pytest.fixture(scope="module")
def guest(spark: Any, test_data: Path) -> PartyTable:
    return read_table(spark, TableSpec(str(test_data / "breast_hetero_guest.csv"), label_column="y"), party="guest:9999")


@pytest.fixture(scope="module")
def guest_arrow(guest: PartyTable) -> pa.Table:
    return guest.to_arrow()


def test_guest_by_plain_path(guest: PartyTable, guest_arrow: pa.Table, test_data: Path) -> None:
    assert guest.uri == f"file://{test_data.resolve()}/breast_hetero_guest.csv"
    assert guest.n_rows == 569
    assert guest.has_label
    assert guest.feature_names == GUEST_FEATURES
    assert guest.dataframe.columns == ["id", "label", *GUEST_FEATURES]
    assert guest_arrow.schema.names == ["id", "label", *GUEST_FEATURES]
    assert guest_arrow.schema.field("id").type == pa.string()
    assert all(guest_arrow.schema.field(n).type == pa.float64() for n in ["label", *GUEST_FEATURES])
    assert all(column.null_count == 0 for column in guest_arrow.columns)


def test_to_arrow_is_sorted_by_id_string_and_matches_the_file(guest_arrow: pa.Table, test_data: Path) -> None:
    ids = guest_arrow.column("id").to_pylist()
    assert ids == sorted(str(i) for i in range(569))
    source = pacsv.read_csv(test_data / "breast_hetero_guest.csv")
    source = source.set_column(0, "id", source.column("id").cast(pa.string())).sort_by("id")
    np.testing.assert_array_equal(column_view(guest_arrow, "label"), source.column("y").to_numpy())
    np.testing.assert_array_equal(
        feature_matrix(guest_arrow, GUEST_FEATURES), feature_matrix(source, GUEST_FEATURES)
    )
    assert set(column_view(guest_arrow, "label").tolist()) == {0.0, 1.0}


def test_host_by_file_uri(spark: Any, test_data: Path) -> None:
    uri = (test_data / "breast_hetero_host.csv").resolve().as_uri()
    host = read_table(spark, TableSpec(uri), party="host:10000")
    assert host.uri == uri
    assert (host.n_rows, host.has_label, host.feature_names) == (569, False, HOST_FEATURES)
    table = host.to_arrow()
    assert table.schema.names == ["id", *HOST_FEATURES]
    host.unpersist()


def test_parquet_copy_with_integer_ids_reads_the_same(
    spark: Any, test_data: Path, tmp_path: Path, guest_arrow: pa.Table
) -> None:
    source = pacsv.read_csv(test_data / "breast_hetero_guest.csv")
    assert source.schema.field("id").type == pa.int64()
    pq.write_table(source, tmp_path / "guest.parquet")
    table = read_table(spark, TableSpec(str(tmp_path / "guest.parquet"), label_column="y"))
    assert table.n_rows == 569
    assert table.to_arrow().equals(guest_arrow)


def test_parquet_round_trip_of_a_validated_table(
    spark: Any, guest: PartyTable, guest_arrow: pa.Table, tmp_path: Path
) -> None:
    written = guest.write_parquet(str(tmp_path / "validated.parquet"))
    assert written == f"file://{tmp_path}/validated.parquet"
    again = read_table(spark, TableSpec(written, label_column="label"))
    assert again.feature_names == GUEST_FEATURES
    assert again.to_arrow().equals(guest_arrow)
    with pytest.raises(TableError) as caught:
        guest.write_parquet(written)
    assert caught.value.problem is TableProblem.UNWRITABLE
    assert guest.write_parquet(written, overwrite=True) == written


def test_declared_feature_subset_and_other_id_column(spark: Any, tmp_path: Path) -> None:
    path = tmp_path / "motor.csv"
    path.write_text("idx,speed,a,b,c\n2,0.5,1,2,3\n1,0.25,4,5,6\n")
    table = read_table(spark, TableSpec(str(path), id_column="idx", label_column="speed", feature_columns=["c", "a"]))
    assert table.feature_names == ["c", "a"]
    got = table.to_arrow()
    assert got.schema.names == ["id", "label", "c", "a"]
    assert got.to_pydict() == {"id": ["1", "2"], "label": [0.25, 0.5], "c": [6.0, 3.0], "a": [4.0, 1.0]}


def test_fill_missing_replaces_empty_and_nan_features(spark: Any, tmp_path: Path) -> None:
    path = tmp_path / "gaps.csv"
    path.write_text("id,y,x0,x1\n1,1,,2\n2,0,NaN,3\n3,1, 4 ,nan\n")
    table = read_table(spark, TableSpec(str(path), label_column="y", fill_missing=0.0)).to_arrow()
    assert table.column("x0").to_pylist() == [0.0, 0.0, 4.0]
    assert table.column("x1").to_pylist() == [2.0, 3.0, 0.0]


def test_keep_missing_leaves_nan_for_a_fill_step_but_never_for_the_label(spark: Any, tmp_path: Path) -> None:
    path = tmp_path / "gaps.csv"
    path.write_text("id,y,x0,x1\n1,1,,2\n2,0,NaN,3\n3,1, 4 ,nan\n")
    table = read_table(spark, TableSpec(str(path), label_column="y", keep_missing=True)).to_arrow()
    x0 = table.column("x0").to_pylist()
    assert math.isnan(x0[0]) and math.isnan(x0[1]) and x0[2] == 4.0
    assert table.column("x0").null_count == 0
    path.write_text("id,y,x0\n1,,2\n")
    with pytest.raises(TableError, match="missing label"):
        read_table(spark, TableSpec(str(path), label_column="y", keep_missing=True))


def test_malformed_rows_are_found_in_a_multi_batch_table(spark: Any, tmp_path: Path) -> None:
    """More rows than one Arrow batch (10k): nothing is skipped between batches."""
    lines = ["id,x0"] + [f"{i},{i * 0.5}" for i in range(25_000)]
    lines[23_457] = "23456,1.0,extra"
    path = tmp_path / "big.csv"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(TableError, match="row id=23456: malformed CSV line '23456,1.0,extra'"):
        read_table(spark, TableSpec(str(path)))


def test_a_tally_folds_the_callers_aggregates_into_the_read_and_skips_the_duplicate_check(
    spark: Any, tmp_path: Path
) -> None:
    """Groups, rows and aggregates from the validating pass; a repeated id passes it, and
    ``check_unique_ids`` names it afterwards (the caller's error path)."""
    from pyspark.sql import functions as F

    from fedspark.storage import Tally, check_unique_ids

    path = tmp_path / "t.parquet"
    pq.write_table(pa.table({"id": [1, 2, 3, 4, 4], "y": [0, 1, 0, 1, 1], "x": [0.5, 1.5, 2.5, 3.5, 4.5]}), path)
    spec = TableSpec(str(path), label_column="y")
    tally = Tally(by=F.col("label"), aggregates={"x_sum": F.sum("x")})
    table = read_table(spark, spec, party="guest:9999", tally=tally)
    assert table.n_rows == 5 and table.party == "guest:9999"
    assert sorted(table.tally, key=lambda g: g["group"]) == [
        {"group": 0.0, "rows": 2, "x_sum": 3.0}, {"group": 1.0, "rows": 3, "x_sum": 9.5},
    ]
    with pytest.raises(TableError) as caught:
        check_unique_ids(table)
    assert caught.value.problem is TableProblem.DUPLICATE_ID and caught.value.row_id == "4"
    assert "guest:9999" in str(caught.value) and "id 4 appears 2 times" in str(caught.value)
    unique = tmp_path / "unique.parquet"
    pq.write_table(pa.table({"id": [1, 2, 3], "y": [0, 1, 0], "x": [0.5, 1.5, 2.5]}), unique)
    check_unique_ids(read_table(spark, TableSpec(str(unique), label_column="y"), tally=tally))  # no repeat: passes
    assert read_table(spark, TableSpec(str(unique), label_column="y")).tally == ()
    # Problems are still refused in the same pass.
    pq.write_table(pa.table({"id": [1, 2], "y": [0, 1], "x": [0.5, float("nan")]}), tmp_path / "nan.parquet")
    with pytest.raises(TableError) as bad:
        read_table(spark, TableSpec(str(tmp_path / "nan.parquet"), label_column="y"), tally=tally)
    assert bad.value.problem is TableProblem.MISSING_VALUE and bad.value.column == "x"


def test_values_later_reads_only_ids_and_the_callers_pass_refuses_a_bad_value(spark: Any, tmp_path: Path) -> None:
    """With ``values_later`` a NaN passes the read (only ids are read) and is refused, with the reader's
    error, once the caller's own action has gone over the rows."""
    from pyspark.sql import functions as F

    from fedspark.storage import Tally, with_value_check

    path = tmp_path / "late.parquet"
    pq.write_table(pa.table({"id": [1, 2, 3], "y": [0, 1, 0], "x": [0.5, float("nan"), 2.5]}), path)
    tally = Tally(by=F.lit(0), aggregates={"n_ids": F.count("id")}, values_later=True)
    table = read_table(spark, TableSpec(str(path), label_column="y"), party="host:10000", tally=tally)
    assert (table.n_rows, table.values_checked, table.tally) == (3, False, ({"group": 0, "rows": 3, "n_ids": 3},))
    frame, check = with_value_check(table)
    assert frame.columns == ["id", "label", "x"]
    assert frame.where(F.col("x") < 1).count() == 1  # the caller's one action (Spark orders NaN above all)
    with pytest.raises(TableError) as caught:
        check.after_pass()
    assert caught.value.problem is TableProblem.MISSING_VALUE and caught.value.column == "x"
    assert caught.value.row_id == "2" and "host:10000" in str(caught.value)
    with pytest.raises(TableError, match="missing value"):
        check.after_failure()  # a kernel that met the NaN first: the reader's error explains it
    good = tmp_path / "good.parquet"
    pq.write_table(pa.table({"id": [1, 2], "y": [0, 1], "x": [0.5, 1.5]}), good)
    frame, check = with_value_check(read_table(spark, TableSpec(str(good), label_column="y"), tally=tally))
    assert frame.count() == 2
    check.after_pass()  # nothing to refuse
    check.after_failure()  # nor does a failed pass have a value to blame
    # An empty id is still refused by the read itself, with the whole row shown.
    pq.write_table(pa.table({"id": ["1", " "], "y": [0, 1], "x": [0.5, 1.5]}), tmp_path / "noid.parquet")
    with pytest.raises(TableError) as no_id:
        read_table(spark, TableSpec(str(tmp_path / "noid.parquet"), label_column="y"), tally=tally)
    assert no_id.value.problem is TableProblem.EMPTY_ID and "x=1.5" in str(no_id.value)


def test_output_is_staged_then_published_under_its_name(spark: Any, tmp_path: Path) -> None:
    from fedspark.storage import discard, publish, staging_uri

    final = str(tmp_path / "scores.parquet")
    staged = staging_uri(final, "job-1")
    assert staged == f"{tmp_path}/_scores.parquet.job-1.incomplete"
    spark.range(3).write.parquet(staged)
    publish(spark, staged, final)
    assert spark.read.parquet(final).count() == 3 and not Path(staged).exists()
    spark.range(2).write.parquet(staged)
    with pytest.raises(TableError, match="already exists"):
        publish(spark, staged, final)
    discard(spark, staged)
    assert not Path(staged).exists() and spark.read.parquet(final).count() == 3
    with pytest.raises(ValueError, match="not a staging folder"):
        discard(spark, final)
