"""llama.cpp's work on a thread that ends with the call.

llama.cpp runs on GNU OpenMP, which keeps a thread's team of helper threads for as long as that thread
lives; teams left on long-lived threads (the LLM calls' pool, a server's worker threads) slowed LightGBM's
training 6-8 times in the same process (``recommender/openmp.py`` says why). A stream's pieces can be pulled
from a different thread each time, so rather than handing teams back afterwards, each call runs on a thread
of its own, which takes its team with it when it ends.
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
