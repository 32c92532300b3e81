"""PSI between real Spark tables over the in-memory federation: 2 and 3 parties, orders, counts."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pyspark.sql import DataFrame, SparkSession

from fedspark.algorithms.psi import PsiResult, align
from fedspark.common import PartyRef, Role
from fedspark.federation import Context, run_parties

GUEST = PartyRef(Role.GUEST, "9999")
HOST = PartyRef(Role.HOST, "10000")
HOST2 = PartyRef(Role.HOST, "10001")


def _table(spark: SparkSession, ids: list[Any], partitions: int = 3, column: str = "id") -> DataFrame:
    rows = [(i, f"feature-of-{i}") for i in ids]
    return spark.createDataFrame(rows, f"{column} {'bigint' if isinstance(ids[0], int) else 'string'}, x string").repartition(partitions)


def _aligned(spark: SparkSession, tables: dict[PartyRef, DataFrame], **kwargs: Any) -> dict[PartyRef, tuple[PsiResult, list[Any]]]:
    def side(party: PartyRef) -> Callable[[Context], tuple[PsiResult, list[Any]]]:
        def run(ctx: Context) -> tuple[PsiResult, list[Any]]:
            result = align(ctx, tables[party], "id", spark, **kwargs)
            return result, [tuple(row) for row in result.table.collect()]

        return run

    return run_parties("psi-test", {party: side(party) for party in tables}, timeout_s=120)


def test_two_parties_get_the_intersection_in_one_order(spark: SparkSession) -> None:
    guest_ids = [f"c{i:04d}" for i in range(0, 300)]
    host_ids = [f"c{i:04d}" for i in range(200, 450)]
    out = _aligned(spark, {GUEST: _table(spark, guest_ids), HOST: _table(spark, host_ids, 2)})
    (g, g_rows), (h, h_rows) = out[GUEST], out[HOST]
    expected = {f"c{i:04d}" for i in range(200, 300)}
    assert [r[0] for r in g_rows] == [r[0] for r in h_rows], "row i must be the same id at every party"
    assert set(r[0] for r in g_rows) == expected and len(g_rows) == 100
    assert all(x == f"feature-of-{i}" for i, x in g_rows), "each party keeps its own columns with its rows"
    assert [r[0] for r in g_rows] != sorted(expected), "the agreed order is the blinded one, not the ids' order"
    assert (g.own_ids, g.matched, g.unmatched, g.peer_ids) == (300, 100, 200, {str(HOST): 250})
    assert (h.own_ids, h.matched, h.unmatched, h.peer_ids) == (250, 100, 150, {str(GUEST): 300})
    assert g.table.columns == ["id", "x"]


def test_three_parties_keep_only_ids_all_of_them_hold(spark: SparkSession) -> None:
    tables = {
        GUEST: _table(spark, list(range(0, 100))),
        HOST: _table(spark, list(range(50, 200))),
        HOST2: _table(spark, [*range(0, 10), *range(80, 300, 2)]),
    }
    out = _aligned(spark, tables, keep_order_key=True)
    orders = {party: [r[0] for r in rows] for party, (_, rows) in out.items()}
    expected = set(range(50, 100)) & set([*range(0, 10), *range(80, 300, 2)])
    assert set(orders[GUEST]) == expected and len(orders[GUEST]) == len(expected) == 10
    assert orders[GUEST] == orders[HOST] == orders[HOST2]
    keys = {party: [r[2] for r in rows] for party, (_, rows) in out.items()}
    assert keys[GUEST] == keys[HOST] == keys[HOST2] == sorted(keys[GUEST])
    assert {party: result.matched for party, (result, _) in out.items()} == {GUEST: 10, HOST: 10, HOST2: 10}
    assert out[GUEST][0].peer_ids == {str(HOST): 150, str(HOST2): 120}


def test_int_ids_meet_text_ids_when_int_is_declared(spark: SparkSession) -> None:
    guest = _table(spark, list(range(0, 20)))
    host = _table(spark, [f"{i:03d}" for i in range(10, 30)])
    out = _aligned(spark, {GUEST: guest, HOST: host}, id_type="int")
    assert sorted(r[0] for r in out[GUEST][1]) == list(range(10, 20))
    assert sorted(r[0] for r in out[HOST][1]) == [f"{i:03d}" for i in range(10, 20)]
    assert [int(r[0]) for r in out[HOST][1]] == [r[0] for r in out[GUEST][1]]


def test_text_ids_without_declaration_compare_as_utf8_text(spark: SparkSession) -> None:
    out = _aligned(spark, {GUEST: _table(spark, ["a", "b", "é"]), HOST: _table(spark, ["é", "b", "z"], 1)})
    assert sorted(r[0] for r in out[HOST][1]) == ["b", "é"]
