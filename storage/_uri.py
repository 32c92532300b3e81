"""Table locations: one URI form for every file system Spark can read.

Plain paths become absolute ``file://`` URIs so a table's location means the
same thing on the driver and on every executor, and ``file://`` and
``hdfs://`` then take one code path (Hadoop's FileSystem API). Other schemes
are refused up front: a party's policy lists the storage it allows, and an
unexpected scheme (``s3a://``, ``http://``) should not reach Spark.
"""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING, Any

from fedspark.storage._errors import TableError, TableProblem

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

SUPPORTED_SCHEMES = ("file", "hdfs")

# Two or more characters, so a Windows-style "C:" stays a path.
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]+):")


def resolve_uri(uri: str) -> str:
    """Return the absolute ``file://`` or ``hdfs://`` URI for a table location.

    ``data/t.csv`` and ``~/t.csv`` become ``file:///abs/path``;
    ``file:///...`` and ``hdfs://namenode:8020/...`` pass through (Hadoop's
    ``file:/abs`` form is normalised to ``file:///abs``). Raises
    :class:`TableError` (``UNSUPPORTED_URI``) for other schemes, relative
    ``file:`` URIs and ``file://`` URIs naming a remote host. Does not check
    existence; see :func:`path_exists`.
    """
    if not uri:
        raise TableError(TableProblem.UNSUPPORTED_URI, repr(uri), "the table location is empty")
    match = _SCHEME.match(uri)
    if match is None:
        return "file://" + os.path.abspath(os.path.expanduser(uri))
    scheme = match.group(1).lower()
    rest = uri[len(match.group(0)) :]
    if scheme == "file":
        if rest.startswith("//"):
            host = rest[2:].split("/", 1)[0]
            if host not in ("", "localhost"):
                raise TableError(
                    TableProblem.UNSUPPORTED_URI, uri, f"file:// URIs must be local; {host!r} is a host name"
                )
            return "file://" + rest[2 + len(host) :]
        if rest.startswith("/"):
            return "file://" + rest
        raise TableError(TableProblem.UNSUPPORTED_URI, uri, "file: URIs must hold an absolute path")
    if scheme == "hdfs":
        if not rest.startswith("//"):
            raise TableError(TableProblem.UNSUPPORTED_URI, uri, "expected hdfs://namenode[:port]/path")
        return uri
    raise TableError(
        TableProblem.UNSUPPORTED_URI,
        uri,
        f"unsupported scheme {scheme!r}; use a plain path, file:// or hdfs://",
    )


def local_bytes(uri: str) -> int | None:
    """Bytes a local table occupies (a file, or every file under a folder), read without Spark.

    None when that is not known before a session starts: another file system
    (``hdfs://``), a path that does not exist (yet), or a location that is not
    a valid table URI (the reader names that problem later).
    """
    try:
        resolved = resolve_uri(uri)
    except TableError:
        return None
    if not resolved.startswith("file://"):
        return None
    path = resolved[len("file://"):]
    if os.path.isfile(path):
        return os.path.getsize(path)
    if not os.path.isdir(path):
        return None
    return sum(os.path.getsize(os.path.join(folder, name)) for folder, _, names in os.walk(path) for name in names)


def path_exists(spark: SparkSession, uri: str) -> bool:
    """Whether ``uri`` (a file, a directory or a glob) matches anything.

    Asks Hadoop's FileSystem for the URI's scheme, the same API Spark reads
    with, so ``file://`` and ``hdfs://`` are checked alike and with the
    session's Hadoop configuration (Kerberos, name-node HA). Unreachable file
    systems raise :class:`TableError` (``UNREADABLE``).
    """
    from py4j.protocol import Py4JError  # type: ignore[import-untyped]
    from pyspark.errors import PySparkException

    try:
        filesystem, path = hadoop_path(spark, uri)
        matches = filesystem.globStatus(path)
    except (Py4JError, PySparkException) as exc:
        raise TableError(
            TableProblem.UNREADABLE, uri, f"cannot reach its file system: {first_line(exc)}"
        ) from exc
    return matches is not None and len(matches) > 0


def staging_uri(uri: str, tag: str) -> str:
    """A sibling of ``uri`` to write into first, then :func:`publish` (hidden from Spark's readers: ``_`` prefix)."""
    head, _, name = uri.rstrip("/").rpartition("/")
    return f"{head}/_{name}.{tag}.incomplete" if head else f"_{name}.{tag}.incomplete"


def publish(spark: SparkSession, staged: str, uri: str) -> None:
    """Move the finished output ``staged`` to ``uri`` (a rename on the same file system); refuse an existing ``uri``.

    Output that is written to a staging path and published only once checked
    never shows half a result, or one a later check refused, under its name.
    """
    filesystem, source = hadoop_path(spark, staged)
    _, target = hadoop_path(spark, uri)
    if filesystem.exists(target):
        raise TableError(TableProblem.UNWRITABLE, uri, "it already exists; choose another output or remove it")
    if not filesystem.rename(source, target):
        raise TableError(TableProblem.UNWRITABLE, uri, f"could not move the finished output from {staged}")


def discard(spark: SparkSession, staged: str) -> None:
    """Delete a staging folder of :func:`staging_uri` (and everything a failed or refused write left in it)."""
    if not staged.rstrip("/").rpartition("/")[2].endswith(".incomplete"):
        raise ValueError(f"{staged} is not a staging folder")
    filesystem, path = hadoop_path(spark, staged)
    if filesystem.exists(path):
        filesystem.delete(path, True)


def hadoop_path(spark: SparkSession, uri: str) -> tuple[Any, Any]:
    """Hadoop's FileSystem for ``uri`` (with the session's Hadoop configuration) and its ``Path``."""
    session: Any = spark
    path = session._jvm.org.apache.hadoop.fs.Path(uri)
    return path.getFileSystem(session._jsc.hadoopConfiguration()), path


def first_line(exc: BaseException) -> str:
    """The informative line of a (possibly Java or executor) exception, for messages.

    For an executor-side Python traceback that is the last line (the error
    itself); otherwise the first.
    """
    java = getattr(exc, "java_exception", None)
    message = str(java.getMessage()) if java is not None else str(exc)
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    return (lines[-1] if "Traceback" in message else lines[0])[:300]
