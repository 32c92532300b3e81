"""Distributed tables cross between two parties and arrive intact."""

from __future__ import annotations

from pyspark.sql import SparkSession

from fedspark.common import PartyRef, Role
from fedspark.federation import Context, run_parties

GUEST = PartyRef(Role.GUEST, "9999")
HOST = PartyRef(Role.HOST, "10000")


def test_table_sent_by_host_arrives_as_dataframe_with_every_row(spark: SparkSession) -> None:
    df = spark.range(0, 5000, numPartitions=4).selectExpr("id", "id * 2.5 as x")

    def host(ctx: Context) -> None:
        ctx.guest.put_table("scores", df)

    def guest(ctx: Context) -> list[tuple[int, float]]:
        got = ctx.hosts[0].get_table("scores", spark)
        return [(r["id"], r["x"]) for r in got.orderBy("id").collect()]

    results = run_parties("tables", {GUEST: guest, HOST: host})
    rows = results[GUEST]
    assert len(rows) == 5000
    assert rows[0] == (0, 0.0) and rows[-1] == (4999, 4999 * 2.5)
