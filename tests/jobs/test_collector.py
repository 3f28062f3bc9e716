"""Jobs run with fewer garbage collections, and give the old thresholds back."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator

import pytest

from kasar.jobs.collector import THRESHOLDS, fewer_collections


@pytest.fixture(autouse=True)
def _restore_thresholds() -> Iterator[None]:
    saved = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    yield
    gc.set_threshold(*saved)


def test_raised_while_a_job_runs_and_restored_after() -> None:
    with fewer_collections():
        assert gc.get_threshold() == THRESHOLDS
    assert gc.get_threshold() == (700, 10, 10)


def test_restored_after_a_failing_job() -> None:
    with pytest.raises(RuntimeError), fewer_collections():
        raise RuntimeError("the job failed")
    assert gc.get_threshold() == (700, 10, 10)


def test_jobs_in_two_threads_restore_only_after_the_last() -> None:
    first_in, second_out = threading.Event(), threading.Event()
    seen: list[tuple[int, int, int]] = []

    def first() -> None:
        with fewer_collections():
            first_in.set()
            second_out.wait(5)
            seen.append(gc.get_threshold())  # the second job has ended: still raised

    thread = threading.Thread(target=first)
    thread.start()
    first_in.wait(5)
    with fewer_collections():
        pass
    second_out.set()
    thread.join(5)
    assert seen == [THRESHOLDS]
    assert gc.get_threshold() == (700, 10, 10)
