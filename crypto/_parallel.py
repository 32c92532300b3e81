"""Threads that really run in parallel: gmpy2 releases the GIL when told to.

gmpy2 (≥ 2.1) can drop the GIL around each mpz operation when the thread's
context has ``allow_release_gil`` set, and its ``powmod_*_list`` functions
always drop it. A 4096-bit modular multiplication takes ~5 µs against well
under 1 µs of interpreter work, so two threads run ~1.7× faster than one
without copying keys or tables into other processes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import gmpy2

T = TypeVar("T")
R = TypeVar("R")


def thread_map(fn: Callable[[T], R], items: Sequence[T], workers: int) -> list[R]:
    """``[fn(x) for x in items]`` on up to ``workers`` threads with the GIL released in gmpy2."""
    if workers <= 1 or len(items) <= 1:
        return [fn(x) for x in items]

    def run(item: T) -> R:
        with gmpy2.context(gmpy2.get_context(), allow_release_gil=True):
            return fn(item)

    with ThreadPoolExecutor(max_workers=min(workers, len(items))) as pool:
        return list(pool.map(run, items))
