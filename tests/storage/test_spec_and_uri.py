"""TableSpec validation, URI resolution, and existence checks through Hadoop's FileSystem API."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from fedspark.common import ConfigError
from fedspark.storage import TableError, TableProblem, TableSpec, local_bytes, path_exists, resolve_uri


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("/data/t.csv", "file:///data/t.csv"),
        ("/data/a b/t.csv", "file:///data/a b/t.csv"),
        ("file:///data/t.csv", "file:///data/t.csv"),
        ("file:/data/t.csv", "file:///data/t.csv"),
        ("file://localhost/data/t.csv", "file:///data/t.csv"),
        ("hdfs://namenode:8020/warehouse/t.parquet", "hdfs://namenode:8020/warehouse/t.parquet"),
        ("hdfs:///warehouse/t.csv", "hdfs:///warehouse/t.csv"),
    ],
)
def test_resolve_uri(uri: str, expected: str) -> None:
    assert resolve_uri(uri) == expected


def test_relative_and_home_paths_become_absolute(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert resolve_uri("data/t.csv") == f"file://{tmp_path}/data/t.csv"
    assert resolve_uri("~/t.csv") == f"file://{tmp_path}/home/t.csv"


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("s3a://bucket/t.csv", "unsupported scheme 's3a'"),
        ("https://example.org/t.csv", "unsupported scheme 'https'"),
        ("webhdfs://namenode/t.csv", "unsupported scheme 'webhdfs'"),
        ("file://otherhost/t.csv", "'otherhost' is a host name"),
        ("file:data/t.csv", "absolute path"),
        ("hdfs:/t.csv", "hdfs://namenode"),
        ("", "empty"),
    ],
)
def test_refused_uris_say_why(uri: str, message: str) -> None:
    with pytest.raises(TableError, match=message) as caught:
        resolve_uri(uri)
    assert caught.value.problem is TableProblem.UNSUPPORTED_URI


def test_path_exists_uses_hadoop_for_files_directories_and_globs(spark: Any, tmp_path: Path) -> None:
    (tmp_path / "part-0.csv").write_text("id\n1\n")
    base = f"file://{tmp_path}"
    assert path_exists(spark, f"{base}/part-0.csv")
    assert path_exists(spark, base)
    assert path_exists(spark, f"{base}/part-*.csv")
    assert not path_exists(spark, f"{base}/missing.csv")
    assert not path_exists(spark, f"{base}/nothing-*.csv")
    # Hadoop's own short form of a local URI takes the same path.
    assert path_exists(spark, f"file:{tmp_path}/part-0.csv")


def test_hdfs_uri_goes_through_the_same_hadoop_api(spark: Any) -> None:
    """No HDFS here: an hdfs:// URI whose name node cannot resolve fails as a TableError."""
    uri = "hdfs://fedspark-no-such-namenode.invalid:8020/t.csv"
    with pytest.raises(TableError) as caught:
        path_exists(spark, uri)
    assert caught.value.problem is TableProblem.UNREADABLE
    assert caught.value.uri == uri
    assert "cannot reach its file system" in str(caught.value)


@pytest.mark.parametrize(
    ("uri", "declared", "expected"),
    [
        ("t.csv", None, "csv"),
        ("t.txt", None, "csv"),
        ("t.parquet", None, "parquet"),
        ("hdfs://nn/t.parquet/", None, "parquet"),
        ("t.PQ", None, "parquet"),
        ("t.parquet", "csv", "csv"),
    ],
)
def test_format_from_extension(uri: str, declared: Any, expected: str) -> None:
    assert TableSpec(uri, format=declared).resolved_format == expected


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"uri": ""}, "uri"),
        ({"uri": "t.csv", "format": "json"}, "format"),
        ({"uri": "t.csv", "feature_columns": "x0"}, "feature_columns"),
        ({"uri": "t.csv", "fill_missing": float("nan")}, "fill_missing"),
        ({"uri": "t.csv", "fill_missing": 0.0, "keep_missing": True}, "exclude each other"),
    ],
)
def test_invalid_spec_is_a_config_error(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        TableSpec(**kwargs)


def test_spec_copies_feature_list() -> None:
    features = ["x0"]
    spec = TableSpec("t.csv", feature_columns=features)
    features.append("x1")
    assert spec.feature_columns == ["x0"]


def test_local_bytes_of_a_file_a_folder_and_what_cannot_be_measured(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_bytes(b"x" * 1000)
    folder = tmp_path / "t.parquet"
    (folder / "sub").mkdir(parents=True)
    (folder / "part-0.parquet").write_bytes(b"y" * 300)
    (folder / "sub" / "part-1.parquet").write_bytes(b"z" * 200)
    assert local_bytes(str(tmp_path / "t.csv")) == 1000
    assert local_bytes((tmp_path / "t.csv").as_uri()) == 1000
    assert local_bytes(str(folder)) == 500
    assert local_bytes(str(tmp_path / "missing.csv")) is None  # not there (yet): unknown, not zero
    assert local_bytes("hdfs://namenode:8020/warehouse/t.parquet") is None  # another file system
    assert local_bytes("s3a://bucket/t.csv") is None  # refused later, by the reader, with its own message
