"""Long-lived threads hand back the OpenMP threads their work started (recommender/openmp.py says why)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from recommender.openmp import release_openmp_threads


def threads_now() -> set[str]:
    return set(os.listdir("/proc/self/task"))


def settled(before: set[str]) -> set[str]:
    """The threads started since ``before`` once ended ones are gone (an ended team's threads exit just
    after it)."""
    deadline = time.monotonic() + 5
    while threads_now() - before and time.monotonic() < deadline:
        time.sleep(0.05)
    return threads_now() - before


def train_lightgbm() -> None:
    import lightgbm

    rows = np.random.default_rng(0)
    lightgbm.train(
        {"verbose": -1, "num_leaves": 15, "num_threads": 2},
        lightgbm.Dataset(rows.random((2000, 10)), rows.random(2000)),
        20,
    )


def test_two_worker_threads_that_trained_keep_no_openmp_threads_once_they_hand_them_back() -> None:
    first, second = ThreadPoolExecutor(1), ThreadPoolExecutor(1)
    try:
        for pool in (first, second):
            pool.submit(lambda: None).result()  # the workers themselves, long-lived
        import lightgbm  # noqa: F401  (its import starts threads of its own: before the count)

        before = threads_now()

        def trained_then(after: Callable[[], int]) -> int:
            train_lightgbm()
            return after()

        # Kept: each worker's team outlives the training.
        first.submit(trained_then, lambda: 0).result()
        second.submit(trained_then, lambda: 0).result()
        assert len(settled(before)) >= 2
        # Handed back: every team ends with the work that started it.
        assert first.submit(release_openmp_threads).result() >= 1
        assert second.submit(release_openmp_threads).result() >= 1
        assert settled(before) == set()
        assert first.submit(trained_then, release_openmp_threads).result() >= 1
        assert second.submit(trained_then, release_openmp_threads).result() >= 1
        assert settled(before) == set()
    finally:
        first.shutdown()
        second.shutdown()
