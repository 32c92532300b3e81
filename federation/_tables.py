"""Distributed tables between parties: ``send_table`` / ``recv_table``.

A party sends a Spark DataFrame to a peer and the peer gets a Spark DataFrame
back. Algorithms (PSI's blinded id columns, a host's partial scores) only use
this pair, so how the rows travel can change underneath them.

This first version routes the table through the driver as one Arrow IPC
message (``DataFrame.toArrow`` on the sender, ``createDataFrame`` on the
receiver). It is correct but bounded by driver memory; the executor-side sink,
which streams each partition from the executor that holds it, replaces it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pyarrow as pa

from fedspark.common import PartyRef

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from fedspark.federation._federation import Federation


def send_table(federation: Federation, tag: str, df: DataFrame, to: PartyRef) -> None:
    """Send every row of ``df`` to ``to`` under ``tag``."""
    federation.send(tag, df.toArrow(), to)


def recv_table(federation: Federation, tag: str, frm: PartyRef, spark: SparkSession) -> DataFrame:
    """Receive the table ``frm`` sent under ``tag`` as a DataFrame of this party's session."""
    table = federation.recv(tag, frm)
    if isinstance(table, pa.RecordBatch):
        table = pa.Table.from_batches([table])
    return spark.createDataFrame(table)
