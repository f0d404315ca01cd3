"""LightGBM's training speed in a process whose local LLM has answered, or whose other threads have trained,
against a process where neither happened.

    python -m bench.openmp_after_llm            # five processes, each timing the same LightGBM training

llama.cpp and LightGBM share GNU OpenMP. A llama.cpp call made on a long-lived thread (the LLM calls' pool,
as in a server) used to leave its OpenMP team behind, and GNU OpenMP then treats the process as holding more
threads than cores: its waiting threads sleep almost at once instead of spinning, and LightGBM's short
parallel loops each pay a wake-up. ``recommender/llm/own_thread.py`` runs each llama.cpp call on a thread
that ends with it. Each case runs in a fresh process (what a call leaves behind lasts as long as the
process):

- ``nothing run before``: the baseline;
- ``llama.cpp on a pool thread``: llama-cpp-python called directly from a long-lived thread (before);
- ``the product's local LLM on a pool thread``: ``LocalGGUFChat`` through ``LLMCalls`` (now);
- ``two worker threads trained``: two long-lived threads (a task queue's, as the in-process worker's) have
  each trained LightGBM once, keeping their OpenMP teams (before) or handing them back at the end of the
  task, as ``ingest``'s tasks do now (``recommender/openmp.py``).

It prints each case's median over ``--repeats`` trainings and its ratio to the baseline.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

CASES = (
    "nothing run before",
    "llama.cpp on a pool thread",
    "the product's local LLM on a pool thread",
    "two worker threads trained, teams kept",
    "two worker threads trained, teams handed back",
)


def _train_seconds(repeats: int) -> list[float]:
    """``repeats`` timings of a LightGBM ranker-sized training (5,000 rows, 20 features, 200 rounds)."""
    import lightgbm
    import numpy as np

    rows = np.random.default_rng(0)
    features, target = rows.random((5000, 20)), rows.random(5000)
    timings = []
    for _ in range(repeats + 1):  # the first warms up
        started = time.perf_counter()
        lightgbm.train({"verbose": -1, "num_leaves": 15}, lightgbm.Dataset(features, target), 200)
        timings.append(time.perf_counter() - started)
    return timings[1:]


def _one_case(case: str, repeats: int) -> list[float]:
    if case in CASES[3:]:
        from concurrent.futures import ThreadPoolExecutor

        from recommender.openmp import release_openmp_threads

        def one_task() -> None:
            _train_seconds(0)
            if case == CASES[4]:
                release_openmp_threads()  # what each task queue task does now

        for worker in (ThreadPoolExecutor(1), ThreadPoolExecutor(1)):  # a task queue's two worker threads
            worker.submit(one_task).result()
    elif case != CASES[0]:
        from recommender.llm.calls import LLMCalls
        from recommender.llm.chat import LocalGGUFChat
        from recommender.settings import LLMConfig

        chat = LocalGGUFChat(LLMConfig(backend="local"))
        calls = LLMCalls(1)
        if case == CASES[1]:
            llama = chat._llama  # the model itself, called as the product did before
            calls.run(lambda: llama.create_completion("Say hello.", max_tokens=8), 120.0)
        else:
            calls.run(lambda: chat.complete("Answer in one word.", "Say hello.", 8, 120.0), 120.0)
    return _train_seconds(repeats)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--case", choices=CASES, help=argparse.SUPPRESS)  # one case, in its own process
    arguments = parser.parse_args(argv)
    if arguments.case:
        print(json.dumps(_one_case(arguments.case, arguments.repeats)))
        return
    medians = {}
    for case in CASES:
        command = [sys.executable, "-m", "bench.openmp_after_llm", "--case", case]
        output = subprocess.run(
            [*command, "--repeats", str(arguments.repeats)], capture_output=True, text=True, check=True
        ).stdout
        medians[case] = statistics.median(json.loads(output.strip().splitlines()[-1]))
    baseline = medians[CASES[0]]
    print(f"LightGBM training, median of {arguments.repeats} (5,000 rows, 200 rounds):")
    for case, seconds in medians.items():
        print(f"  {case:<45} {seconds:6.3f} s   {seconds / baseline:5.2f}x the baseline")


if __name__ == "__main__":
    main()
