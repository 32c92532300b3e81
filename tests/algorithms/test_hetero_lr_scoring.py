"""The guest's scoring kernel pairs its rows with the hosts' partials by position and key, never by guess."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from fedspark.algorithms.hetero_lr._scoring import KEY, PARTIAL, REPEATED_KEY, RepeatedKey, guest_score_arrays
from fedspark.federation import TableRows

KEYS = np.arange(1000, dtype=np.int64) * 7 - 3000  # ascending, negative and positive like xxhash64 values
"""Bucket 0 holds rows 0..299, bucket 1 rows 300..999 (offsets [0, 300])."""
OFFSETS = [0, 300]


def _guest(bucket: int, keys: np.ndarray, size: int) -> list[tuple[pa.Array, ...]]:
    linear = keys * 0.001
    return [(pa.array(np.full(len(keys[i:i + size]), bucket, dtype=np.int32)), pa.array(keys[i:i + size]),
             pa.array(linear[i:i + size])) for i in range(0, len(keys), size)]


def _host(partials: np.ndarray, keys: np.ndarray = KEYS) -> TableRows:
    return TableRows(table=pa.table({KEY: keys, PARTIAL: partials}).combine_chunks())


def _score(batches: list[tuple[pa.Array, ...]], hosts: list[TableRows]) -> np.ndarray:
    out = list(guest_score_arrays(iter(batches), offsets=OFFSETS, hosts=hosts))
    assert [len(a) for a in out] == [len(b[1]) for b in batches]
    return pa.chunked_array(out, pa.float64()).to_numpy(zero_copy_only=False)


def test_a_task_adds_every_hosts_partials_for_its_own_bucket() -> None:
    """The task of bucket 1 reads rows 300.. of each host, across batch boundaries."""
    first, second = np.linspace(-2, 2, 1000), np.cos(np.arange(1000))
    got = _score(_guest(1, KEYS[300:], 64), [_host(first), _host(second)])
    linear = KEYS[300:] * 0.001 + first[300:] + second[300:]
    np.testing.assert_allclose(got, 1 / (1 + np.exp(-linear)), rtol=0, atol=1e-15)


def test_rows_a_host_did_not_send_get_no_score() -> None:
    """A host table that ends early, or holds another key at a row, leaves those scores null
    (check_complete refuses the result)."""
    short = _score(_guest(0, KEYS[:300], 30), [_host(np.zeros(290), KEYS[:290])])
    assert np.isnan(short[290:]).all() and not np.isnan(short[:290]).any()
    other = KEYS.copy()
    other[40] += 1
    wrong = _score(_guest(0, KEYS[:300], 30), [_host(np.zeros(1000), other)])
    assert np.flatnonzero(np.isnan(wrong)).tolist() == [40]


@pytest.mark.parametrize("at", [5, 63, 64])
def test_a_repeated_key_stops_the_task(at: int) -> None:
    """A repeated id sits next to its twin in key order, within a batch or across two."""
    keys = KEYS[:300].copy()
    keys[at] = keys[at - 1]
    with pytest.raises(RepeatedKey, match=REPEATED_KEY):
        _score(_guest(0, keys, 64), [_host(np.zeros(1000))])


def test_a_result_with_unscored_rows_is_refused_naming_the_hosts(spark) -> None:  # type: ignore[no-untyped-def]
    from fedspark.algorithms.hetero_lr._scoring import check_complete, counting_unscored
    from fedspark.common import PartyRef, ProtocolError, Role
    from fedspark.federation import Context, Federation, LoopbackHub

    guest, host = PartyRef(Role.GUEST, "9999"), PartyRef(Role.HOST, "10000")
    hub = LoopbackHub()
    for party in (guest, host):
        hub.transport(party.party_id).open_job("job-scores", (guest, host))
    ctx = Context(Federation("job-scores", guest, (guest, host), hub.transport(guest.party_id), timeout_s=0.1))
    scores = pa.table({"id": [str(i) for i in range(100)], "score": pa.array([0.5] * 90 + [None] * 10, pa.float64())})
    def unscored_when_written(table: pa.Table) -> int:
        """The null scores counted in the pass that writes them (here to Spark's noop sink)."""
        observed, unscored = counting_unscored(spark.createDataFrame(table))
        observed.write.format("noop").mode("overwrite").save()
        return unscored()

    check_complete(ctx, unscored_when_written(scores.slice(0, 90)))
    with pytest.raises(ProtocolError, match=r"job job-scores: 10 aligned row\(s\) got no partial score from the host\(s\) host:10000"):
        check_complete(ctx, unscored_when_written(scores))
