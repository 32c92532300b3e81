"""Driver-side files (models, feature transforms) by URI: local, ``hdfs://`` and ``webhdfs://``.

Tables go through Spark; a model is a small file the driver writes and reads
whole. With a Spark session, ``file://`` and ``hdfs://`` both go through
Hadoop's FileSystem API with the session's Hadoop configuration (name-node HA,
Kerberos tickets, ``core-site.xml``), so the ``file://`` tests exercise the
``hdfs://`` code path. ``webhdfs://host:port/path`` goes over HTTP with the
``hdfs`` package, for a driver without Hadoop's client configuration (a party
whose cluster only exposes WebHDFS or HttpFS); the user is
``HADOOP_USER_NAME`` (simple authentication; see docs/cluster.md for Kerberos).
Without a session (the arbiter has none), ``file://`` and plain paths use the
local file system directly.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from fedspark.common import DataError
from fedspark.storage._errors import TableError
from fedspark.storage._uri import first_line, hadoop_path, resolve_uri

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

FILE_SCHEMES = ("file", "hdfs", "webhdfs")
_WEBHDFS = re.compile(r"^webhdfs://([^/]+)(/.*)$", re.IGNORECASE)


class StorageFileError(DataError):
    """A model or other driver-side file cannot be read or written at ``uri``."""

    def __init__(self, uri: str, detail: str, *, missing: bool = False) -> None:
        super().__init__(f"file {uri}: {detail}")
        self.uri, self.detail = uri, detail
        self.missing = missing
        """True when the file does not exist (as opposed to an unreachable or unreadable one)."""


def resolve_file_uri(uri: str) -> str:
    """Absolute ``file://``, ``hdfs://`` or ``webhdfs://host:port/path`` URI for a file location."""
    if uri.lower().startswith("webhdfs:"):
        if not _WEBHDFS.match(uri):
            raise StorageFileError(uri, "expected webhdfs://namenode:port/absolute/path")
        return uri
    try:
        return resolve_uri(uri)
    except TableError as exc:
        raise StorageFileError(uri, f"{exc.detail}; files may also use webhdfs://") from None


def write_json(path: Path, data: Any) -> None:
    """A local JSON result file (metrics, rounds, a model): indented, keys sorted, one final newline."""
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def write_file(uri: str, data: bytes, *, spark: SparkSession | None = None, overwrite: bool = True) -> str:
    """Write ``data`` to ``uri`` (replacing it unless ``overwrite`` is false); return the resolved URI."""
    resolved = resolve_file_uri(uri)
    if resolved.startswith("webhdfs:"):
        client, path = _webhdfs(resolved)
        _call(resolved, "cannot write", lambda: client.write(path, data=data, overwrite=overwrite))
    elif spark is None and resolved.startswith("file://"):
        path_ = Path(resolved[len("file://"):])
        if path_.exists() and not overwrite:
            raise StorageFileError(resolved, "exists (overwrite is off)")

        def write_local() -> None:
            path_.parent.mkdir(parents=True, exist_ok=True)
            path_.write_bytes(data)

        _call(resolved, "cannot write", write_local)
    else:
        fs, path = _hadoop(spark, resolved)

        def write() -> None:
            stream = fs.create(path, overwrite)
            try:
                stream.write(bytearray(data))
            finally:
                stream.close()

        _call(resolved, "cannot write", write)
    return resolved


def read_file(uri: str, *, spark: SparkSession | None = None) -> bytes:
    """Read the whole file at ``uri``; a missing file raises :class:`StorageFileError` saying so."""
    resolved = resolve_file_uri(uri)
    if resolved.startswith("webhdfs:"):
        client, path = _webhdfs(resolved)

        def read_web() -> bytes:
            if client.status(path, strict=False) is None:
                raise StorageFileError(resolved, "no such file", missing=True)
            with client.read(path) as reader:
                return bytes(reader.read())

        return bytes(_call(resolved, "cannot read", read_web))
    if spark is None and resolved.startswith("file://"):
        local = Path(resolved[len("file://"):])
        if not local.is_file():
            raise StorageFileError(resolved, "no such file", missing=True)
        return local.read_bytes()
    fs, path = _hadoop(spark, resolved)
    if not _call(resolved, "cannot reach its file system", lambda: bool(fs.isFile(path))):
        raise StorageFileError(resolved, "no such file", missing=True)

    def read_hadoop() -> bytes:
        stream = fs.open(path)
        try:
            return bytes(stream.readAllBytes())
        finally:
            stream.close()

    return bytes(_call(resolved, "cannot read", read_hadoop))


def _hadoop(spark: SparkSession | None, uri: str) -> tuple[Any, Any]:
    if spark is None:
        raise StorageFileError(uri, "hdfs:// needs the party's Spark session (its Hadoop configuration)")
    return _call(uri, "cannot reach its file system", lambda: hadoop_path(spark, uri))  # type: ignore[no-any-return]


def _webhdfs(uri: str) -> tuple[Any, str]:
    from hdfs import InsecureClient

    parts = urlsplit(uri)
    client = InsecureClient(f"http://{parts.netloc}", user=os.environ.get("HADOOP_USER_NAME"))
    return client, parts.path


def _call(uri: str, what: str, fn: Any) -> Any:
    """Run ``fn``, turning JVM, HTTP and OS failures into :class:`StorageFileError` naming the URI."""
    from hdfs.util import HdfsError

    try:
        return fn()
    except StorageFileError:
        raise
    except (OSError, HdfsError) as exc:
        raise StorageFileError(uri, f"{what}: {exc}") from exc
    except Exception as exc:
        if type(exc).__module__.startswith(("py4j", "pyspark", "requests", "urllib3")):
            raise StorageFileError(uri, f"{what}: {first_line(exc)}") from exc
        raise
