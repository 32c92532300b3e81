"""Scoring's bad-input paths, each party's own error: guest and host in this process.

Both parties run ``run_scoring`` in threads over real gRPC gateways
on loopback and share the test session's Spark. The CLI runs
(tests/integration/test_predict.py) show whole jobs; the embedded runner there
reports whichever party stops first, so only here can a test check what
*each* party says, and that the guest's message never names the host's id.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from pyspark.sql import SparkSession

from fedspark.algorithms.hetero_lr import run_scoring
from fedspark.common import PartyRef, Role
from fedspark.engine.config._job import load_job
from fedspark.engine.runtime._party import party_task
from fedspark.federation import Context, Federation, GrpcTransport

GUEST = PartyRef(Role.GUEST, "9999")
HOST = PartyRef(Role.HOST, "10000")
ROWS = 300
REPEATED_ROW, TWIN_ROW = 10, 11
GUEST_WEIGHTS, HOST_WEIGHTS = [0.5, -0.3], [0.2, 0.7]

Network = Callable[..., dict[str, GrpcTransport]]


def _tables(folder: Path, guest_features: tuple[str, str] = ("g0", "g1"),
            host_features: tuple[str, str] = ("h0", "h1")) -> dict[str, pd.DataFrame]:
    """Both parties' tables (the same ids, in different row orders) and their model files."""
    rng = np.random.default_rng(4)
    ids = [f"c{i:04d}" for i in rng.permutation(ROWS)]
    guest = pd.DataFrame({"id": ids, "y": rng.integers(0, 2, ROWS),
                          **{name: rng.normal(size=ROWS) for name in guest_features}})
    host = pd.DataFrame({"id": ids, **{name: rng.normal(size=ROWS) for name in host_features}})
    host = host.sample(frac=1.0, random_state=2).reset_index(drop=True)  # another row order than the guest's
    for name, model in (("guest", {"role": "guest", "party_id": "9999", "feature_names": list(guest_features),
                                   "weights": GUEST_WEIGHTS, "intercept": 0.1, "meta": {}}),
                        ("host", {"role": "host", "party_id": "10000", "feature_names": list(host_features),
                                  "weights": HOST_WEIGHTS, "intercept": None, "meta": {}})):
        (folder / f"model-{name}").mkdir()
        (folder / f"model-{name}" / "model.json").write_text(json.dumps(model))
    return {"guest": guest, "host": host}


def _repeat_an_id(table: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    twin = str(table.loc[TWIN_ROW, "id"])
    changed = table.copy()
    changed.loc[REPEATED_ROW, "id"] = twin
    return changed, twin


def _score(folder: Path, network: Network, spark: SparkSession, guest_uri: Path, host_uri: Path,
           job_id: str) -> dict[PartyRef, Any]:
    """Run both parties' side of a scoring job; each party's result or exception."""
    job = {
        "name": "predict_parties", "algorithm": "hetero_lr_predict", "align": "same_ids",
        "parties": {
            "guest": {"party_id": "9999", "model_dir": str(folder / "model-guest"),
                      "data": {"uri": str(guest_uri), "label_column": "y"}},
            "hosts": [{"party_id": "10000", "model_dir": str(folder / "model-host"), "data": {"uri": str(host_uri)}}],
        },
        "scoring": {"output": str(folder / f"{job_id}-scores")},
    }
    (folder / f"{job_id}.yaml").write_text(yaml.safe_dump(job))
    config = load_job(folder / f"{job_id}.yaml")
    transports = network(job_id, [GUEST, HOST])
    outcome: dict[PartyRef, Any] = {}

    def run(party: PartyRef) -> None:
        ctx = Context(Federation(job_id, party, [GUEST, HOST], transports[party.party_id], timeout_s=120))
        out = folder / "runs" / job_id / f"{party.role.value}-{party.party_id}"
        out.mkdir(parents=True)
        try:
            outcome[party] = run_scoring(party_task(config, party, ctx, out, spark))
        except Exception as exc:  # noqa: BLE001 - each party's error is what these tests check
            outcome[party] = exc

    threads = [threading.Thread(target=run, args=(party,)) for party in (GUEST, HOST)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not any(thread.is_alive() for thread in threads), "a party did not finish"
    return outcome


def _message(error: Any) -> str:
    assert isinstance(error, Exception), f"expected an error, the party returned {error!r}"
    return " ".join(str(error).split())


def _no_output(folder: Path, job_id: str) -> None:
    """Neither the scores nor their staging folder (``_<name>.<job>.incomplete``) is left."""
    assert not (folder / f"{job_id}-scores").exists()
    assert not list(folder.glob(f"_{job_id}-scores*"))


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return tmp_path


@pytest.mark.parametrize(
    ("guest_features", "host_features"),
    [(("g0", "g1"), ("h0", "h1")),
     # Names users' tables have: a dot (not a struct field), a space, a backtick.
     (("income.monthly", "age years"), ("x.1", "debt`ratio"))],
)
def test_clean_tables_score_every_row(
    folder: Path, grpc_network_factory: Network, spark: SparkSession,
    guest_features: tuple[str, str], host_features: tuple[str, str],
) -> None:
    """The harness itself: tables without a fault score all rows (so the failures below are the faults')."""
    tables = _tables(folder, guest_features, host_features)
    tables["guest"].to_csv(folder / "guest.csv", index=False)
    tables["host"].to_parquet(folder / "host.parquet")
    outcome = _score(folder, grpc_network_factory, spark, folder / "guest.csv", folder / "host.parquet", "clean")
    assert outcome[GUEST]["scored_rows"] == outcome[HOST]["scored_rows"] == ROWS, outcome
    scores = pd.read_parquet(folder / "clean-scores").set_index("id").sort_index()
    guest, host = tables["guest"].set_index("id"), tables["host"].set_index("id")
    u = 0.1 + guest.loc[scores.index, list(guest_features)].to_numpy() @ GUEST_WEIGHTS
    u += host.loc[scores.index, list(host_features)].to_numpy() @ HOST_WEIGHTS
    np.testing.assert_allclose(scores["score"].to_numpy(), 1 / (1 + np.exp(-u)), rtol=1e-12)


def test_an_id_both_parties_repeat_is_named_by_the_guest(
    folder: Path, grpc_network_factory: Network, spark: SparkSession
) -> None:
    """Equal multisets pass the digest; in key order the guest meets the twins side by side and its
    reader's exact check names the id and the file. Nothing is published."""
    tables = _tables(folder)
    guest, twin = _repeat_an_id(tables["guest"])
    host, _ = _repeat_an_id(tables["host"].set_index("id").loc[tables["guest"]["id"]].reset_index())
    guest.to_csv(folder / "guest_rep.csv", index=False)
    host.to_csv(folder / "host_rep.csv", index=False)
    outcome = _score(folder, grpc_network_factory, spark, folder / "guest_rep.csv", folder / "host_rep.csv", "both")
    said = _message(outcome[GUEST])
    assert f"id {twin} appears 2 times" in said and "guest_rep.csv" in said
    _no_output(folder, "both")


def test_an_id_only_the_host_repeats_is_named_by_the_host_alone(
    folder: Path, grpc_network_factory: Network, spark: SparkSession
) -> None:
    """Equal counts, different multisets: the digests differ. The host names its repeated id in its own
    error; the guest learns only that the host's table repeats an id, never which."""
    tables = _tables(folder)
    tables["guest"].to_csv(folder / "guest.csv", index=False)
    host, twin = _repeat_an_id(tables["host"])
    host.to_csv(folder / "host_rep_only.csv", index=False)
    outcome = _score(folder, grpc_network_factory, spark, folder / "guest.csv", folder / "host_rep_only.csv",
                     "host-repeat")
    host_said, guest_said = _message(outcome[HOST]), _message(outcome[GUEST])
    assert f"id {twin} appears 2 times" in host_said and "host_rep_only.csv" in host_said
    assert f"host #0 holds {ROWS} ids that are not the guest's; host #0: its table repeats an id" in guest_said
    assert twin not in guest_said and "host_rep_only.csv" not in guest_said
    _no_output(folder, "host-repeat")


def test_a_bad_value_in_the_hosts_parquet_table_is_named_by_the_host(
    folder: Path, grpc_network_factory: Network, spark: SparkSession
) -> None:
    """Typed Parquet with same_ids is read once for its ids; the host meets its missing value in the
    scoring pass and names file, column and row. Its partial scores are withdrawn, so the guest stops
    at once (not after its timeout) knowing only that the host's job stopped."""
    tables = _tables(folder)
    tables["guest"].to_parquet(folder / "guest.parquet")
    host = tables["host"].copy()
    host.loc[7, "h1"] = float("nan")
    host.to_parquet(folder / "host_nan.parquet")
    outcome = _score(folder, grpc_network_factory, spark, folder / "guest.parquet", folder / "host_nan.parquet",
                     "late-nan")
    host_said, guest_said = _message(outcome[HOST]), _message(outcome[GUEST])
    assert "host:10000" in host_said and "host_nan.parquet" in host_said and "column 'h1'" in host_said
    assert f"row id={host.loc[7, 'id']}" in host_said
    assert "from host:10000: the sender withdrew it" in guest_said, guest_said
    assert str(host.loc[7, "id"]) not in guest_said and "h1" not in guest_said
    _no_output(folder, "late-nan")
