"""Fewer garbage collections while jobs run.

A job allocates millions of small, short-lived containers (rows, keys, results):
with Python's default thresholds the cyclic collector runs every 700 allocations,
and every tenth of those walks the older generation too. Raising the first
threshold while a job runs took 13-15% off validating and writing 100,000 rows
(docs/performance.md). Garbage without cycles is freed at once as always; cycles
wait a little longer.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

THRESHOLDS = (50_000, 20, 10)

_lock = threading.Lock()
_running = 0
_saved: tuple[int, int, int] = gc.get_threshold()


@contextmanager
def fewer_collections() -> Iterator[None]:
    """``THRESHOLDS`` while any job of this process runs; the previous ones after
    the last (jobs may run in several threads at once)."""
    global _running, _saved
    with _lock:
        if _running == 0:
            _saved = gc.get_threshold()
            gc.set_threshold(*THRESHOLDS)
        _running += 1
    try:
        yield
    finally:
        with _lock:
            _running -= 1
            if _running == 0:
                gc.set_threshold(*_saved)


def for_a_job_process() -> None:
    """``THRESHOLDS`` for good: the initializer of a process that only serves a job."""
    gc.set_threshold(*THRESHOLDS)
