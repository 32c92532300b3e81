"""hetero_lr's protocol over the in-memory transport: it must compute exactly what
plaintext Taylor-approximated LR computes on the joined table (up to quantisation)."""

from __future__ import annotations

import numpy as np
import pytest

from fedspark.algorithms.hetero_lr import (
    HeteroLRParams,
    IdsNotAligned,
    VerticalData,
    compute_factory,
    id_digest,
    train_arbiter,
    train_guest,
    train_host,
)
from fedspark.algorithms.hetero_lr._batches import epoch_batches
from fedspark.common import PartyRef, Role
from fedspark.federation.loopback import run_parties

GUEST, HOST, ARBITER = PartyRef(Role.GUEST, "9999"), PartyRef(Role.HOST, "10000"), PartyRef(Role.ARBITER, "10001")


def _synthetic(n: int = 300, seed: int = 3) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    rng = np.random.default_rng(seed)
    xg, xh = rng.normal(size=(n, 3)), rng.normal(size=(n, 4))
    logits = xg @ [1.0, -0.5, 0.3] + xh @ [0.8, 0.0, -1.2, 0.4] + 0.2
    y = (rng.random(n) < 1 / (1 + np.exp(-logits))).astype(np.float64)
    return xg, xh, y, [f"id{i:04d}" for i in range(n)]


def _plain_taylor_lr(xg, xh, y, params: HeteroLRParams, seed: int):  # type: ignore[no-untyped-def]
    """The same updates in plaintext on the joined table."""
    xg1 = np.column_stack([xg, np.ones(len(xg))])
    wg, wh = np.zeros(xg1.shape[1]), np.zeros(xh.shape[1])
    ys = 2 * y - 1
    for epoch in range(params.max_iter):
        for rows in epoch_batches(seed, epoch, len(y), params.batch_size):
            d = 0.25 * (xg1[rows] @ wg + xh[rows] @ wh) - 0.5 * ys[rows]
            gg = xg1[rows].T @ d / len(rows)
            gg[:-1] += params.alpha * wg[:-1]
            gh = xh[rows].T @ d / len(rows) + params.alpha * wh
            wg, wh = wg - params.learning_rate * gg, wh - params.learning_rate * gh
    return wg, wh


def _run(params: HeteroLRParams, host_ids: list[str] | None = None):  # type: ignore[no-untyped-def]
    xg, xh, y, ids = _synthetic()
    guest_data = VerticalData(ids=ids, feature_names=["a", "b", "c"], labels=y)
    host_data = VerticalData(ids=host_ids or ids, feature_names=["d", "e", "f", "g"])
    results = run_parties(
        "job-proto",
        {
            GUEST: lambda ctx: train_guest(
                ctx, guest_data, params, compute_factory(xg, params, intercept=True), min_key_size=512
            ),
            HOST: lambda ctx: train_host(
                ctx, host_data, params, compute_factory(xh, params, intercept=False), min_key_size=512
            ),
            ARBITER: lambda ctx: train_arbiter(ctx, params, key_size=512, min_key_size=512),
        },
        timeout_s=120,
    )
    return results, (xg, xh, y)


@pytest.mark.parametrize("batch_size", [-1, 120])
def test_federated_weights_equal_plaintext_taylor_lr(batch_size: int) -> None:
    params = HeteroLRParams(max_iter=4, batch_size=batch_size, seed=11, early_stop=False, learning_rate=0.3)
    results, (xg, xh, y) = _run(params)
    wg, wh = _plain_taylor_lr(xg, xh, y, params, seed=11)
    guest, host = results[GUEST].model, results[HOST].model
    np.testing.assert_allclose(guest.weights, wg[:-1], atol=1e-4)
    assert guest.intercept == pytest.approx(wg[-1], abs=1e-4)
    np.testing.assert_allclose(host.weights, wh, atol=1e-4)


def test_loss_is_the_taylor_loss_and_decreases() -> None:
    params = HeteroLRParams(max_iter=3, batch_size=-1, seed=5, early_stop=False, alpha=0.0)
    results, (xg, xh, y) = _run(params)
    losses = results[ARBITER].loss_history
    assert losses == results[GUEST].loss_history
    assert results[HOST].loss_history == [None] * len(losses)  # hosts get the stop decision only
    assert losses[0] == pytest.approx(np.log(2), abs=1e-6)  # all-zero weights in epoch 1
    assert losses[2] < losses[1] < losses[0]
    scores = results[GUEST].scores
    assert scores is not None and scores.shape == (len(y),) and ((scores > 0) & (scores < 1)).all()


def test_convergence_stops_early() -> None:
    params = HeteroLRParams(max_iter=30, batch_size=-1, seed=5, tol=0.01)
    results, _ = _run(params)
    assert results[ARBITER].converged and results[ARBITER].epochs < 30
    assert results[GUEST].epochs == results[HOST].epochs == results[ARBITER].epochs


def test_different_id_sets_stop_every_party() -> None:
    _, _, _, ids = _synthetic()
    with pytest.raises(IdsNotAligned, match="PSI alignment"):
        _run(HeteroLRParams(max_iter=1), host_ids=[*ids[:-1], "someone-else"])


def test_executors_compute_what_the_driver_computes(spark) -> None:  # type: ignore[no-untyped-def]
    """The executor backend over a persisted frame gives the driver backend's batches, u and X^T[[e]]."""
    from fedspark.algorithms.hetero_lr import DriverCompute, ExecutorCompute
    from fedspark.algorithms.hetero_lr._batches import iter_batches
    from fedspark.crypto import FixedPoint, generate_keypair

    public, private = generate_keypair(512, allow_insecure_key_size=True)
    xg, _, y, _ = _synthetic(n=400)
    frame = spark.createDataFrame(
        [(i, *map(float, xg[i]), float(y[i])) for i in range(len(y))], "_rank long, _x0 double, _x1 double, "
        "_x2 double, _y double").repartition(3)
    driver = DriverCompute(xg, public, 32, 16)
    on_executors = ExecutorCompute(spark, frame, len(y), 3, public, 32, 16)
    codec = FixedPoint(public.n, 32)
    w = np.array([0.5, -1.0, 0.25])
    for compute in (driver, on_executors):
        compute.start_epoch(7, 1, 150)
    assert on_executors.plan_digest() == driver.plan_digest()
    batch = list(iter_batches(7, 1, len(y), 150))[1]
    np.testing.assert_allclose(on_executors.linear(batch, w), driver.linear(batch, w), atol=1e-12)
    np.testing.assert_array_equal(on_executors.labels(batch), y[batch.rows])
    u, enc = on_executors.encrypted_linear(batch, w)
    np.testing.assert_allclose(u, driver.linear(batch, w), atol=1e-12)
    np.testing.assert_allclose(codec.decode(private.decrypt_many(enc)), u, atol=1e-9)
    assert on_executors.gradient(batch, enc) == driver.gradient(batch, enc)
    on_executors.release()


def test_spark_digest_equals_the_driver_digest(spark) -> None:  # type: ignore[no-untyped-def]
    """The JVM digest (Spark's xxhash64, summed per group and then over the groups, as scoring's read
    pass does) is the driver's Σ XXH64 mod 2^64, whatever the order and partitions."""
    from fedspark.algorithms.hetero_lr._alignment import digest_aggregates, digest_from_sums, id_digest
    from fedspark.arrow_bridge import collect_arrow, order_cell, order_key

    def spark_digest(df, salt: bytes) -> bytes:  # type: ignore[no-untyped-def]
        key = order_key("id", salt)
        sums = digest_aggregates(key)
        groups = collect_arrow(df.groupBy(order_cell(key)).agg(*(e.alias(n) for n, e in sums.items()))).to_pylist()
        return digest_from_sums(sum(g["digest_low"] for g in groups), sum(g["digest_high"] for g in groups))

    ids = [str(i) for i in range(2000)] + ["é-ü", "", " padded ", "x" * 300]
    salt = bytes(range(32))
    df = spark.createDataFrame([(i,) for i in reversed(ids)], "id string").repartition(3)
    assert spark_digest(df, salt) == id_digest(salt, ids)
    assert spark_digest(df, bytes(32)) != id_digest(salt, ids)
    assert spark_digest(df.where("id != '7'"), salt) != id_digest(salt, ids)
    assert spark_digest(df.union(df.where("id = '7'")), salt) != id_digest(salt, ids)  # a repeat changes it


@pytest.mark.parametrize(
    ("n_rows", "batch_size", "sizes"),
    [(569, 240, [240, 329]), (600, 200, [200, 200, 200]), (250, -1, [250]), (250, 400, [250]), (599, 300, [599])],
)
def test_the_remainder_of_an_epoch_joins_its_last_batch(n_rows: int, batch_size: int, sizes: list[int]) -> None:
    batches = epoch_batches(3, 1, n_rows, batch_size)
    assert [len(b) for b in batches] == sizes
    assert sorted(np.concatenate(batches).tolist()) == list(range(n_rows))


@pytest.mark.parametrize(("n_rows", "batch_size"), [(569, 240), (1000, 100), (30_001, 1000), (7, -1)])
def test_every_executor_finds_its_rows_batch_from_the_rank_alone(n_rows: int, batch_size: int) -> None:
    """batch_of (an executor, per row) and batch_rows (the driver, per batch) are the same plan, and
    epochs draw different batches."""
    from fedspark.algorithms.hetero_lr._batches import batch_of

    of = batch_of(5, 2, np.arange(n_rows), n_rows, batch_size)
    for b, rows in enumerate(epoch_batches(5, 2, n_rows, batch_size)):
        assert (of[rows] == b).all() and (np.diff(rows) > 0).all()
    if batch_size > 0:
        assert not np.array_equal(of, batch_of(5, 3, np.arange(n_rows), n_rows, batch_size))


def _executor_factory(spark, x: np.ndarray, params: HeteroLRParams, labels: np.ndarray | None):  # type: ignore[no-untyped-def]
    """The executor backend over a (_rank, _x…, [_y]) frame built from ``x`` (rank = row position)."""
    from fedspark.algorithms.hetero_lr import executor_factory

    guest = labels is not None
    matrix = np.column_stack([x, np.ones(len(x))]) if guest else x
    names = [f"_x{j}" for j in range(matrix.shape[1])]
    rows = [(i, *map(float, matrix[i]), *([float(labels[i])] if guest else [])) for i in range(len(x))]  # type: ignore[index]
    schema = ", ".join(["_rank long", *(f"{n} double" for n in names), *(["_y double"] if guest else [])])
    frame = spark.createDataFrame(rows, schema).repartition(2).cache()
    return executor_factory(spark, frame, len(x), matrix.shape[1], params)


def test_the_executor_path_trains_the_driver_paths_weights(spark) -> None:  # type: ignore[no-untyped-def]
    """The whole protocol with both parties on the executor backend: the driver path's weights to 1e-9,
    and the scores come back as a DataFrame whose metrics are the driver path's."""
    from fedspark.algorithms.evaluation import binary_metrics, binary_metrics_frame

    params = HeteroLRParams(max_iter=2, batch_size=120, seed=11, early_stop=False, learning_rate=0.3)
    driver, (xg, xh, y) = _run(params)
    ids = _synthetic()[3]
    results = run_parties(
        "job-executors",
        {
            GUEST: lambda ctx: train_guest(
                ctx, VerticalData(ids=None, feature_names=["a", "b", "c"], count=len(ids),
                                  digest=lambda salt: id_digest(salt, ids), labels_in_compute=True),
                params, _executor_factory(spark, xg, params, y), min_key_size=512,
            ),
            HOST: lambda ctx: train_host(
                ctx, VerticalData(ids=ids, feature_names=["d", "e", "f", "g"]), params,
                _executor_factory(spark, xh, params, None), min_key_size=512,
            ),
            ARBITER: lambda ctx: train_arbiter(ctx, params, key_size=512, min_key_size=512),
        },
        timeout_s=300,
    )
    np.testing.assert_allclose(results[GUEST].model.weights, driver[GUEST].model.weights, rtol=0, atol=1e-9)
    np.testing.assert_allclose(results[HOST].model.weights, driver[HOST].model.weights, rtol=0, atol=1e-9)
    on_executors = binary_metrics_frame(results[GUEST].scores)
    in_driver = binary_metrics(y, driver[GUEST].scores)
    for name in ("auc", "ks", "accuracy"):
        assert on_executors[name] == pytest.approx(in_driver[name], abs=1e-12), name
    results[GUEST].release()


def test_a_party_whose_batch_plan_differs_is_named_before_the_first_batch() -> None:
    """A host whose rows would fall into other batches (here: another permutation) stops every party
    before any [[u]] crosses, and each side names the other."""
    from fedspark.algorithms.hetero_lr import DriverCompute
    from fedspark.common import ProtocolError

    class OtherOrder(DriverCompute):
        def start_epoch(self, seed: int, epoch: int, batch_size: int) -> None:
            super().start_epoch(seed + 1, epoch, batch_size)

    params = HeteroLRParams(max_iter=1, batch_size=120, seed=11, early_stop=False)
    xg, xh, y, ids = _synthetic()
    with pytest.raises(ProtocolError, match=r"host 10000's batch plan differs|guest 9999's batch plan differs"):
        run_parties(
            "job-plan",
            {
                GUEST: lambda ctx: train_guest(ctx, VerticalData(ids, ["a", "b", "c"], y), params,
                                               compute_factory(xg, params, intercept=True), min_key_size=512),
                HOST: lambda ctx: train_host(ctx, VerticalData(ids, ["d", "e", "f", "g"]), params,
                                             lambda key: OtherOrder(xh, key, params.frac_bits, params.x_frac_bits),
                                             min_key_size=512),
                ARBITER: lambda ctx: train_arbiter(ctx, params, key_size=512, min_key_size=512),
            },
            timeout_s=60,
        )
