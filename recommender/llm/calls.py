"""LLM calls off the request thread, under a time limit, with a bounded backlog.

A call past its time limit cannot be stopped (llama.cpp and HTTP clients run to completion), so it keeps
its slot until it ends; while every slot is taken, new calls are refused at once instead of queueing
behind work that requests have already given up on.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import TypeVar

ResultT = TypeVar("ResultT")


class LLMBusyError(Exception):
    """Every slot is taken by calls still running."""


class LLMTimeoutError(Exception):
    """The call did not finish within its time limit (it goes on in the background)."""


class LLMCalls:
    def __init__(self, capacity: int) -> None:
        self._slots = threading.BoundedSemaphore(capacity)
        self._executor = ThreadPoolExecutor(max_workers=capacity, thread_name_prefix="llm")

    def run(self, work: Callable[[], ResultT], timeout_seconds: float) -> ResultT:
        if timeout_seconds <= 0:
            raise LLMTimeoutError("no time left in the budget")
        if not self._slots.acquire(blocking=False):
            raise LLMBusyError("the LLM is still busy with earlier requests")

        def guarded() -> ResultT:
            try:
                return work()
            finally:
                self._slots.release()

        future = self._executor.submit(guarded)
        try:
            return future.result(timeout=timeout_seconds)
        except FutureTimeout as error:
            raise LLMTimeoutError(f"over its time budget ({timeout_seconds:.2g} s)") from error
