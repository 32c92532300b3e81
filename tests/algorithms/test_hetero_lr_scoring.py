"""The guest's scoring kernel pairs its rows with the hosts' partials by row number, never by guess."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from fedspark.algorithms.hetero_lr._scoring import PARTIAL, ROW, guest_score_batches
from fedspark.federation import TableRows


def _guest_batches(start: int, n: int, size: int) -> list[pa.RecordBatch]:
    rows = np.arange(start, start + n)
    table = pa.table({ROW: rows, "id": [f"u{r}" for r in rows], "y": (rows % 2).astype(np.float64),
                      "g0": rows * 0.01, "g1": np.ones(n)})
    return table.to_batches(max_chunksize=size)


def _host(partials: np.ndarray, rows: np.ndarray | None = None) -> TableRows:
    rows = np.arange(len(partials)) if rows is None else rows
    return TableRows(table=pa.table({ROW: rows, PARTIAL: partials}).combine_chunks())


def _score(batches: list[pa.RecordBatch], hosts: list[TableRows]) -> pa.Table:
    out = guest_score_batches(iter(batches), feature_names=["g0", "g1"], weights=[0.5, -0.25], intercept=0.1,
                              keep=["id", "y"], hosts=hosts, threshold=0.5)
    return pa.Table.from_batches(list(out))


def test_a_task_adds_every_hosts_partials_for_its_own_rows() -> None:
    """A task holding rows 300..799 reads exactly those rows of each host, across batch boundaries."""
    n_total = 1000
    first, second = np.linspace(-2, 2, n_total), np.cos(np.arange(n_total))
    got = _score(_guest_batches(300, 500, 64), [_host(first), _host(second)])
    rows = np.arange(300, 800)
    linear = rows * 0.01 * 0.5 - 0.25 + 0.1 + first[rows] + second[rows]
    expected = 1 / (1 + np.exp(-linear))
    assert got.column_names == ["id", "score", "predicted_label", "label"]
    assert got.column("id").to_pylist() == [f"u{r}" for r in rows]
    np.testing.assert_allclose(got.column("score").to_numpy(), expected, rtol=0, atol=1e-15)
    assert got.column("predicted_label").to_pylist() == (expected >= 0.5).astype(int).tolist()
    assert got.column("label").to_pylist() == (rows % 2).astype(float).tolist()


def test_rows_a_host_did_not_send_get_no_score() -> None:
    """A host table that ends early, or whose row numbers differ, leaves those scores null (check_complete refuses)."""
    short = _score(_guest_batches(0, 100, 30), [_host(np.zeros(90))])
    assert short.column("score").null_count == 10 and short.column("score")[89].is_valid
    assert short.column("predicted_label").null_count == 10
    shifted = np.arange(100)
    shifted[40] = 41
    wrong = _score(_guest_batches(0, 100, 30), [_host(np.zeros(100), shifted)])
    assert [i for i, v in enumerate(wrong.column("score").to_pylist()) if v is None] == [40]


def test_a_result_with_unscored_rows_is_refused_naming_the_hosts(spark) -> None:  # type: ignore[no-untyped-def]
    import pytest

    from fedspark.algorithms.hetero_lr._scoring import check_complete
    from fedspark.common import PartyRef, ProtocolError, Role
    from fedspark.federation import Context, Federation, LoopbackHub

    guest, host = PartyRef(Role.GUEST, "9999"), PartyRef(Role.HOST, "10000")
    hub = LoopbackHub()
    for party in (guest, host):
        hub.transport(party.party_id).open_job("job-scores", (guest, host))
    ctx = Context(Federation("job-scores", guest, (guest, host), hub.transport(guest.party_id), timeout_s=0.1))
    table = _score(_guest_batches(0, 100, 30), [_host(np.zeros(90))])
    check_complete(ctx, spark.createDataFrame(table.slice(0, 90)))
    with pytest.raises(ProtocolError, match=r"job job-scores: 10 aligned row\(s\) got no partial score from the host\(s\) host:10000"):
        check_complete(ctx, spark.createDataFrame(table))
