"""llama.cpp's work on a thread that ends with the call.

llama.cpp runs its matrix work in OpenMP teams, and GNU OpenMP keeps a team's threads for as long as the
thread that started it lives. LightGBM shares that runtime. Once a long-lived thread (the LLM calls' pool,
a server's worker threads) has started a llama.cpp team, the process holds more OpenMP threads than it has
cores, and GNU OpenMP then makes every waiting thread sleep almost at once instead of spinning. LightGBM's
many short parallel loops pay a wake-up each: on 2 cores the training job's ranker trained 6-8 times more
slowly in a process whose local LLM had answered once (`bench/openmp_after_llm.py`). A thread that ends
takes its team with it, so each call here runs on one.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from typing import TypeVar, cast

ResultT = TypeVar("ResultT")
_END = object()


def call_on_own_thread(work: Callable[[], ResultT], name: str = "llama-call") -> ResultT:
    """``work()``'s result (or its exception), computed on a new thread that has ended on return."""
    outcome: dict[str, object] = {}

    def target() -> None:
        try:
            outcome["value"] = work()
        except BaseException as error:  # handed to the caller, raised there
            outcome["error"] = error

    thread = threading.Thread(target=target, name=name, daemon=True)
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome["value"]  # type: ignore[return-value]


def stream_on_own_thread(produce: Callable[[], Iterator[str]], name: str = "llama-stream") -> Iterator[str]:
    """The pieces ``produce()`` yields, produced on a new thread that ends with them. A consumer that stops
    early stops the producer at its next piece."""
    pieces: queue.Queue[object] = queue.Queue()
    stopped = threading.Event()

    def target() -> None:
        produced = produce()
        try:
            for piece in produced:
                if stopped.is_set():
                    break
                pieces.put(piece)
        except BaseException as error:  # handed to the consumer, raised there
            pieces.put(error)
        finally:
            produced.close()  # type: ignore[attr-defined]
            pieces.put(_END)

    threading.Thread(target=target, name=name, daemon=True).start()
    try:
        while (item := pieces.get()) is not _END:
            if isinstance(item, BaseException):
                raise item
            yield cast(str, item)
    finally:
        stopped.set()
