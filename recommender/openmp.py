"""Hand back the OpenMP threads a long-lived thread started, once its piece of work is done.

torch, LightGBM and llama.cpp run their parallel loops on GNU OpenMP, which keeps each thread's team of
helper threads for as long as that thread lives. Two long-lived threads that have each trained something
(a task queue's worker threads, say) leave the process holding more OpenMP threads than cores, and GNU
OpenMP then makes every waiting thread sleep almost at once instead of spinning: LightGBM's many short
loops each pay a wake-up, and its training ran 7-8 times more slowly on 2 cores from then on
(`bench/openmp_after_llm.py` measures it, with and without a local LLM). ``omp_pause_resource_all``
(OpenMP 5.0) ends the calling thread's team; the next parallel loop starts a new one (handing back and
starting again: about 0.09 ms, docs/llm.md).
"""

from __future__ import annotations

import ctypes
from pathlib import Path

OMP_PAUSE_SOFT = 1
_found: tuple[object, ...] = ()


def _pause_functions() -> tuple[object, ...]:
    """``omp_pause_resource_all`` of each GNU OpenMP runtime this process has loaded (looked for until one
    is: the runtimes come with torch, LightGBM or llama.cpp)."""
    global _found
    if _found:
        return _found
    try:
        maps = Path("/proc/self/maps").read_text()
    except OSError:  # not Linux: nothing to hand back this way
        return ()
    libraries = sorted({line.split()[-1] for line in maps.splitlines() if "libgomp" in line.split()[-1]})
    functions = []
    for library in libraries:
        try:
            pause = ctypes.CDLL(library).omp_pause_resource_all
        except (OSError, AttributeError):  # an OpenMP runtime older than 5.0
            continue
        pause.argtypes, pause.restype = [ctypes.c_int], ctypes.c_int
        functions.append(pause)
    _found = tuple(functions)
    return _found


def release_openmp_threads() -> int:
    """End the OpenMP threads the calling thread started, in every GNU OpenMP runtime loaded; how many
    runtimes did. Call it where a long-lived thread has finished a piece of work, outside parallel code."""
    released = 0
    for pause in _pause_functions():
        released += pause(OMP_PAUSE_SOFT) == 0  # type: ignore[operator]
    return released
