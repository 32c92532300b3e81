"""Running big-integer work on both cores: threads for long calls, processes for short ones.

gmpy2 (≥ 2.1) can drop the GIL around each mpz operation when the thread's
context has ``allow_release_gil`` set, and its ``powmod_*_list`` functions
always drop it. That pays off when each released call is long (a batch of
powmods, a 4096-bit exponentiation): ``thread_map``.

It does not pay off for loops of single modular multiplications (the bucket
multi-exponentiation): at 1024-bit keys one multiplication takes ~1.5 µs, and
handing the GIL back and forth around every one made two threads slower than
one (measured: 170k vs 277k terms/s). ``process_map`` runs such loops in a
small pool of worker processes instead. The pool is local to the party
process, started once (``spawn``, so no JVM or gRPC threads are forked) and
only ever given integers and numpy arrays by this process itself; nothing from
another party reaches it undecoded.
"""

from __future__ import annotations

import atexit
import logging
import multiprocessing
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import TypeVar

import gmpy2

T = TypeVar("T")
R = TypeVar("R")

_log = logging.getLogger(__name__)
_pool_lock = threading.Lock()
_pools: dict[int, ProcessPoolExecutor] = {}


def thread_map(fn: Callable[[T], R], items: Sequence[T], workers: int) -> list[R]:
    """``[fn(x) for x in items]`` on up to ``workers`` threads with the GIL released in gmpy2."""
    if workers <= 1 or len(items) <= 1:
        return [fn(x) for x in items]

    def run(item: T) -> R:
        with gmpy2.context(gmpy2.get_context(), allow_release_gil=True):
            return fn(item)

    with ThreadPoolExecutor(max_workers=min(workers, len(items))) as pool:
        return list(pool.map(run, items))


def process_map(fn: Callable[[T], R], items: Sequence[T], workers: int) -> list[R]:
    """``[fn(x) for x in items]`` on a shared pool of ``workers`` processes.

    ``fn`` must be a module-level function and the items plain data (ints,
    bytes, numpy arrays). With one worker or one item it runs inline.
    """
    if workers <= 1 or len(items) <= 1:
        return [fn(x) for x in items]
    try:
        return list(_process_pool(workers).map(fn, items))
    except BrokenProcessPool as exc:
        # e.g. a script without an ``if __name__ == "__main__"`` guard, which spawn re-runs
        _forget_pool(workers)
        _log.warning("worker processes failed (%s); computing in this process instead", exc)
        return [fn(x) for x in items]


def _process_pool(workers: int) -> ProcessPoolExecutor:
    with _pool_lock:
        pool = _pools.get(workers)
        if pool is None:
            pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"))
            _pools[workers] = pool
        return pool


def _forget_pool(workers: int) -> None:
    with _pool_lock:
        pool = _pools.pop(workers, None)
    if pool is not None:
        pool.shutdown(wait=False, cancel_futures=True)


@atexit.register
def shutdown_pools() -> None:
    """Stop the worker processes (also called at interpreter exit, so none is left behind)."""
    with _pool_lock:
        pools = list(_pools.values())
        _pools.clear()
    for pool in pools:
        pool.shutdown(wait=True, cancel_futures=True)
