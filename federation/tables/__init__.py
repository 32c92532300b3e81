"""Distributed tables: partitions go from executors through their own gateway, and come back the same way.

``Context.send_table`` / ``recv_table`` are the API; this package holds the
executor-side sink, the executor-side source (partitions streamed from the
receiving party's gateway) and row ranges (:class:`TableRows`,
:class:`RowCursor`), and the manifest that ties them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fedspark.federation._lazy import lazy_exports

if TYPE_CHECKING:
    from fedspark.federation.tables._fetch import SourceTarget, fetch_part
    from fedspark.federation.tables._sink import SinkTarget, encode_partition, part_seq, push_partition
    from fedspark.federation.tables._source import PartFile, RowCursor, TableRows, TableSource, read_part
    from fedspark.federation.tables._tables import recv_table, recv_table_rows, send_table

_EXPORTS = {
    "SinkTarget": "fedspark.federation.tables._sink",
    "encode_partition": "fedspark.federation.tables._sink",
    "part_seq": "fedspark.federation.tables._sink",
    "push_partition": "fedspark.federation.tables._sink",
    "fetch_part": "fedspark.federation.tables._fetch",
    "PartFile": "fedspark.federation.tables._source",
    "SourceTarget": "fedspark.federation.tables._fetch",
    "RowCursor": "fedspark.federation.tables._source",
    "TableRows": "fedspark.federation.tables._source",
    "TableSource": "fedspark.federation.tables._source",
    "read_part": "fedspark.federation.tables._source",
    "recv_table": "fedspark.federation.tables._tables",
    "recv_table_rows": "fedspark.federation.tables._tables",
    "send_table": "fedspark.federation.tables._tables",
}

__getattr__ = lazy_exports(__name__, _EXPORTS)

__all__ = [
    "PartFile",
    "RowCursor",
    "SinkTarget",
    "SourceTarget",
    "TableRows",
    "TableSource",
    "encode_partition",
    "fetch_part",
    "part_seq",
    "push_partition",
    "read_part",
    "recv_table",
    "recv_table_rows",
    "send_table",
]
