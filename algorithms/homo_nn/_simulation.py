"""``homo_nn`` simulation: N virtual clients trained as Spark tasks, one arbiter, one process.

The arbiter is the real one (``train_arbiter``: selection, barrier, FedAvg,
round records) talking over the in-memory transport. The clients are not N
processes or N gateways: one driver-side proxy holds their contexts, answers
the arbiter's round messages for all of them, and trains the selected ones as
one Spark job per round (``train_clients_kernel`` over the table partitioned by
client). Secure mode runs each selected client's masking steps in a thread, so
simulated masked rounds exercise the same ``_secure`` code as a real party.
With packed Paillier the virtual clients agree their shared key through the
arbiter-free ``client_key`` exchange, each encrypts its own update in its Spark
task, and the arbiter adds ciphertexts as it does for real parties. The
encrypted global model is identical for every virtual client, so the proxy
decrypts it once per round for all of them (the same plaintext each real client
would get; only the repeated work is saved).
"""

from __future__ import annotations

import contextlib
import functools
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import pyarrow as pa

from fedspark.algorithms.evaluation import binary_metrics
from fedspark.algorithms.homo_nn._aggregate import select_clients
from fedspark.algorithms.homo_nn._arbiter import train_arbiter
from fedspark.algorithms.homo_nn._local import predict
from fedspark.algorithms.homo_nn._network import as_tensor, build_network, get_vector
from fedspark.algorithms.homo_nn._paillier_agg import check_share, client_key, decrypt_global, mask_seeds, packer
from fedspark.algorithms.homo_nn._params import HomoNNParams
from fedspark.algorithms.homo_nn._roster import client_refs
from fedspark.algorithms.homo_nn._secure import client_round
from fedspark.algorithms.homo_nn._sim_kernel import UPDATE_SCHEMA, train_clients_kernel
from fedspark.algorithms.homo_nn._split import dirichlet_split
from fedspark.arrow_bridge import collect_arrow
from fedspark.common import ConfigError, PartyRef, Role
from fedspark.crypto import Packer, PrivateKey, PublicKey
from fedspark.federation import Context, Federation, LoopbackHub, PairKeys
from fedspark.storage import write_json

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from fedspark.storage import TableSpec

RoundCallback = Callable[[int, dict[str, Any]], None]
SIMULATION_WORKER_MODULES = (
    "pyspark.worker", "torch", "torch._dynamo", "fedspark.algorithms.homo_nn._sim_kernel", "fedspark.storage._kernel",
)
"""What a simulation's Spark workers should import before their first task: PySpark's worker module, torch,
the two kernels they run, and ``torch._dynamo``, which torch imports lazily on the first optimiser a process
builds (``Optimizer.__init__`` is wrapped by ``torch._compile``): ~800 modules, 1-2 s in round 0."""


class SparkWorkers(Protocol):
    """How the caller's Spark session lets Python workers import modules before their first task.

    The engine passes its worker daemon (``preloading`` and ``start_warm_up`` over its sessions); without
    one the simulation runs the same jobs on workers that import on first use.
    """

    def preloading(self, spark: SparkSession, modules: Sequence[str]) -> AbstractContextManager[None]: ...

    def start_warm_up(self, spark: SparkSession, modules: Sequence[str]) -> DataFrame: ...


@dataclass(frozen=True)
class SimulationSettings:
    """Virtual clients over one table: ``clients`` parts split non-IID (Dirichlet over labels, ``dirichlet_alpha``),
    spread over ``partitions`` Spark partitions; ``test_data`` scores the final model."""

    data: TableSpec
    clients: int = 100
    test_data: TableSpec | None = None
    dirichlet_alpha: float = 0.5
    seed: int = 0
    partitions: int = 2
ARBITER = PartyRef(Role.ARBITER, "arbiter")
_SIM_PARTY = str(PartyRef(Role.GUEST, "simulation"))  # how table errors name the simulation's one table


@dataclass
class SimResult:
    rounds: list[dict[str, Any]] = field(default_factory=list)
    weights: np.ndarray | None = None
    feature_names: list[str] = field(default_factory=list)
    client_rows: list[int] = field(default_factory=list)
    seconds: float = 0.0
    setup_seconds: float = 0.0


class Simulation:
    """A simulated federation over one table; ``run`` trains ``params.rounds`` rounds."""

    def __init__(self, spark: SparkSession, sim: SimulationSettings, params: HomoNNParams, job_id: str,
                 timeout_s: float = 300.0, *, workers: SparkWorkers | None = None) -> None:
        if params.mode == "async":
            raise ConfigError("simulation runs synchronous rounds (plaintext, masked or packed Paillier), "
                              f"not mode {params.mode}")
        started = time.monotonic()
        self.spark, self.sim, self.params, self.job_id, self.timeout_s = spark, sim, params, job_id, timeout_s
        self.workers = workers
        # Start-up work that needs no table runs alongside the table read: the executors'
        # Python workers (with torch, under the caller's worker daemon) and the driver's torch import.
        warm_up = workers.start_warm_up(spark, SIMULATION_WORKER_MODULES) if workers is not None else None
        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="fedspark-sim-warm") as warm:
            warmed = warm.submit(collect_arrow, warm_up) if warm_up is not None else None
            driver_torch = warm.submit(_driver_torch)
            self.feature_names, x, y = load_xy(spark, sim.data, _SIM_PARTY)
            self.owner = dirichlet_split(y, sim.clients, sim.dirichlet_alpha, sim.seed)
            self.frame = self._frame(x, y)
            driver_torch.result()
            self.initial = get_vector(build_network(params.network, x.shape[1], params.seed))
            if warmed is not None:
                warmed.result()
        self.clients = [PartyRef(Role.HOST, f"c{i:04d}") for i in range(sim.clients)]
        self._key: _SharedKey | None = None
        self.setup_seconds = time.monotonic() - started

    def _frame(self, x: np.ndarray, y: np.ndarray) -> DataFrame:
        columns = {"client": pa.array(self.owner), "label": pa.array(y)}
        columns.update({name: pa.array(x[:, j]) for j, name in enumerate(self.feature_names)})
        frame = self.spark.createDataFrame(pa.table(columns).to_pandas())
        frame = frame.repartition(self.sim.partitions, "client").cache()
        frame.count()
        return frame

    def run(self, on_round: RoundCallback | None = None) -> SimResult:
        started = time.monotonic()
        roster = [*self.clients, ARBITER]
        # No certificates here: one process deals the virtual clients' pair keys (outputs say so).
        self.pair_keys = PairKeys.dealt([p.party_id for p in self.clients])
        hub = LoopbackHub()
        transports = {p.party_id: hub.transport(p.party_id) for p in roster}
        for transport in transports.values():
            transport.open_job(self.job_id, roster)

        def context(party: PartyRef) -> Context:
            return Context(Federation(self.job_id, party, roster, transports[party.party_id], self.timeout_s,
                                      pair_keys=self.pair_keys.get(party.party_id)))

        outcome: dict[str, Any] = {}

        def arbiter() -> None:
            try:
                outcome["result"] = train_arbiter(context(ARBITER), self.params, on_round=on_round)
            except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
                outcome["error"] = exc
                hub.close()

        thread = threading.Thread(target=arbiter, name=f"fedspark-sim-{self.job_id}", daemon=True)
        thread.start()
        try:
            self._clients({p.party_id: context(p) for p in self.clients})
        except BaseException as exc:
            hub.close()
            thread.join()
            raise outcome.get("error", exc) from exc  # the arbiter's failure is the cause, if it failed
        finally:
            thread.join()
            hub.close()
        if "error" in outcome:
            raise outcome["error"]
        result = outcome["result"]
        weights = result.weights if self._key is None else self._key.open(result.weights)
        return SimResult(rounds=result.rounds, weights=weights, feature_names=self.feature_names,
                         client_rows=np.bincount(self.owner, minlength=self.sim.clients).tolist(),
                         seconds=time.monotonic() - started, setup_seconds=self.setup_seconds)

    def _clients(self, ctxs: dict[str, Context]) -> None:
        """Answer the arbiter for every virtual client: one Spark job trains the selected ones."""
        rows = np.bincount(self.owner, minlength=self.sim.clients)
        for i, ctx in enumerate(ctxs.values()):
            ctx.sub("setup").arbiter.put("hello", {"n_samples": int(rows[i]), "n_parameters": self.initial.size})
        index = {pid: i for i, pid in enumerate(ctxs)}
        if self.params.secure.mode == "paillier":
            self._key = _SharedKey.agree(ctxs, self.params, self.initial.size)
        weights = self.initial
        # One thread per client: a masked round blocks every client until all sent their keys.
        pool = ThreadPoolExecutor(max_workers=len(ctxs))
        trainer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fedspark-sim-train")
        try:
            for round_no in range(self.params.rounds):
                scoped = {pid: ctx.sub(f"round-{round_no}") for pid, ctx in ctxs.items()}
                starts = {pid: rctx.arbiter.get("start") for pid, rctx in scoped.items()}
                selected = [pid for pid, start in starts.items() if start["selected"]]
                if selected and starts[selected[0]].get("weights") is not None:
                    model = starts[selected[0]]["weights"]
                    weights = np.asarray(model, dtype=np.float64) if self._key is None else self._key.open(model)
                chosen = frozenset(index[pid] for pid in selected)
                shares = {index[pid]: check_share(scoped[pid], round_no, starts[pid]["share"]) for pid in selected}
                if self.params.secure.mode == "masking":
                    # Real clients train while they exchange keys and shares, each on its own machine.
                    # Virtual clients share this driver's cores and GIL with the Spark job that trains
                    # them, so the job starts once every client has its masks ready and asks for its
                    # update: overlapping the two made both slower (0.7 s for a 0.3 s training job).
                    ready = _TrainWhenReady(len(selected), functools.partial(
                        trainer.submit, self._train, weights, round_no, chosen))
                    futures = [pool.submit(ready.run_client, client_round, scoped[pid], pid, self.params,
                                           functools.partial(ready.update_of, index[pid]),
                                           n_parameters=self.initial.size, round_no=round_no)
                               for pid in selected]
                    for future in futures:
                        future.result()
                else:
                    masks = self._masks(ctxs, round_no, index) if self._key is not None else None
                    updates = self._train(weights, round_no, chosen, shares, masks)
                    for pid in selected:
                        w, n, loss = updates[index[pid]]
                        update = {"weights": w, "n": n, "loss": loss} if self._key is None else {"enc": self._key.column(w)}
                        scoped[pid].arbiter.put("update", update)
        finally:
            pool.shutdown()
            trainer.shutdown()
        for ctx in ctxs.values():
            ctx.sub("final").arbiter.get("model")
            ctx.sub("final").arbiter.put("bye", {})

    def _masks(self, ctxs: dict[str, Context], round_no: int, index: dict[str, int]) -> dict[int, list[tuple[int, bytes]]]:
        """Each selected virtual client's Paillier mask seeds (its executor expands them, as a real client
        computes its own masks next to its encryption)."""
        first = next(iter(ctxs.values()))
        selected = select_clients(list(client_refs(first)), self.params.selection, round_no)
        return {index[pid]: mask_seeds(self.pair_keys[pid], pid, selected, self.params, self.job_id, round_no)
                for pid in selected}

    def _train(self, weights: np.ndarray, round_no: int, selected: frozenset[int],
               shares: dict[int, float] | None = None, masks: dict[int, list[tuple[int, bytes]]] | None = None,
               ) -> dict[int, tuple[np.ndarray, int, float]]:
        """Each selected client's (weights, or with Paillier its ciphertexts as uint8, n, loss)."""
        from fedspark.arrow_bridge import map_in_arrow

        kernel = functools.partial(
            train_clients_kernel, params_json=self.params.model_dump_json(), weights=weights.tobytes(),
            round_no=round_no, selected=selected, feature_names=self.feature_names,
            paillier_n=None if self._key is None else self._key.public_key.n, shares=shares,
            clients=len(self.clients), masks=masks,
        )
        preloading = (self.workers.preloading(self.spark, SIMULATION_WORKER_MODULES) if self.workers is not None
                      else contextlib.nullcontext())
        with preloading:  # workers that have torch and this kernel imported
            trained = map_in_arrow(self.frame, kernel, UPDATE_SCHEMA)
        table = collect_arrow(trained)  # bounded: one update vector per virtual client of this round
        out: dict[int, tuple[np.ndarray, int, float]] = {}
        dtype = np.float64 if self._key is None else np.uint8
        for client, n, loss, w in zip(*(table.column(c).to_pylist() for c in ("client", "n", "loss", "weights"))):
            out[int(client)] = (np.frombuffer(w, dtype=dtype).copy(), int(n), float(loss))
        return out


@dataclass
class _SharedKey:
    """The virtual clients' shared Paillier key, agreed through the real ``client_key`` exchange."""

    private_key: PrivateKey
    pack: Packer
    n_parameters: int

    @property
    def public_key(self) -> PublicKey:
        return self.private_key.public_key

    @classmethod
    def agree(cls, ctxs: dict[str, Context], params: HomoNNParams, n_parameters: int) -> _SharedKey:
        order = list(client_refs(next(iter(ctxs.values()))).values())  # as a real client orders them
        keys = [client_key(ctx, order, params) for ctx in ctxs.values()]  # the first one sends first
        return cls(keys[0], packer(keys[0].public_key, params, len(order)), n_parameters)

    def open(self, model: Any) -> np.ndarray:
        return decrypt_global(self.private_key, self.pack, model, self.n_parameters)[0]

    def column(self, ciphertexts: np.ndarray) -> pa.FixedSizeBinaryArray:
        """A client's concatenated ciphertexts (from its Spark task) as the update column."""
        width = self.public_key.ciphertext_width
        return pa.FixedSizeBinaryArray.from_buffers(pa.binary(width), len(ciphertexts) // width,
                                                    [None, pa.py_buffer(ciphertexts.tobytes())])


def _driver_torch() -> None:
    """Import torch for the driver's one use (the initial network), with one intra-op thread:
    more would only compete with the executors' tasks for the same cores."""
    import torch

    torch.set_num_threads(1)


class _TrainWhenReady:
    """Starts a round's training job once each of ``clients`` asked for its update or left the round."""

    def __init__(self, clients: int, start: Callable[[], Future[dict[int, tuple[np.ndarray, int, float]]]]) -> None:
        self._waiting, self._start = clients, start
        self._lock = threading.Lock()
        self._started = threading.Event()
        self._training: Future[dict[int, tuple[np.ndarray, int, float]]] | None = None

    def _arrive(self) -> None:
        with self._lock:
            self._waiting -= 1
            if self._waiting == 0 and self._training is None:
                self._training = self._start()
                self._started.set()

    def update_of(self, client: int) -> tuple[np.ndarray, int, float]:
        """One client's update from the round's training job (waits for every client, then for the job)."""
        self._arrive()
        self._started.wait()
        assert self._training is not None
        return self._training.result()[client]

    def run_client(self, function: Callable[..., bool], *args: Any, **kwargs: Any) -> bool:
        """``function`` (a client's round); a client that leaves before asking for its update still counts."""
        asked = False
        update_of = args[3]

        def asking(*a: Any) -> tuple[np.ndarray, int, float]:
            nonlocal asked
            asked = True
            return update_of(*a)

        try:
            return function(*args[:3], asking, *args[4:], **kwargs)
        finally:
            if not asked:
                self._arrive()


def simulate(
    spark: SparkSession, sim: SimulationSettings, params: HomoNNParams, job_id: str, out: Path, *,
    timeout_s: float = 300.0, on_round: RoundCallback | None = None, workers: SparkWorkers | None = None,
) -> dict[str, Any]:
    """Run a simulation job on ``spark``: ``rounds.json`` after every round, then ``metrics.json`` and
    ``model.json`` in ``out``; returns the metrics. ``on_round`` hears of each round after it is written.

    torch is left to :class:`Simulation`, which imports it (one intra-op thread) while it reads the table.
    """
    out.mkdir(parents=True, exist_ok=True)
    simulation = Simulation(spark, sim, params, job_id, timeout_s=timeout_s, workers=workers)
    rounds: list[dict[str, Any]] = []

    def round_done(round_no: int, record: dict[str, Any]) -> None:
        rounds.append(record)
        write_json(out / "rounds.json", rounds)
        if on_round is not None:
            on_round(round_no, record)

    result = simulation.run(round_done)
    metrics: dict[str, Any] = {
        "clients": sim.clients, "rounds": len(result.rounds), "seconds": result.seconds,
        "setup_seconds": result.setup_seconds, "rounds_per_second": len(result.rounds) / result.seconds,
        "later_round_seconds": [r["seconds"] for r in result.rounds[1:]],
        "client_rows": result.client_rows, "secure": params.secure.mode,
        "client_keys": "not used" if params.secure.mode == "none" else
        "pair keys dealt in one process (a simulation: no party certificates)",
    }
    if sim.test_data is not None and result.weights is not None and params.network.loss == "bce":
        names, x, y = load_xy(spark, sim.test_data, _SIM_PARTY, result.feature_names)
        network = build_network(params.network, len(names), params.seed)
        metrics.update(binary_metrics(y, predict(network, result.weights, as_tensor(x), params),
                                      params.decision_threshold))
    write_json(out / "metrics.json", metrics)
    if result.weights is not None:
        write_json(out / "model.json", {"algorithm": "homo_nn", "network": params.network.model_dump(),
                                        "seed": params.seed, "feature_names": result.feature_names,
                                        "weights": result.weights.tolist()})
    return metrics


def load_xy(
    spark: SparkSession, table: TableSpec, party: str, feature_names: list[str] | None = None
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Features (one row-major copy) and labels (a zero-copy view) of one of ``party``'s tables.

    The whole table lands in the driver: only the simulation does this, because it deals one small
    table out to its virtual clients. A real client streams its table instead (``_rows.TableRows``).
    """
    from fedspark.arrow_bridge import column_view, feature_matrix
    from fedspark.storage import read_table

    arrow = read_table(spark, table, party=party).to_arrow()
    names = feature_names or [c for c in arrow.column_names if c not in ("id", "label")]
    return names, feature_matrix(arrow, names), column_view(arrow, "label")
