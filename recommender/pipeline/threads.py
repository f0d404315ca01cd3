"""One BLAS thread on the request path.

A request's matrix products are small (a few thousand rows times 64 or 384 columns). Handed to OpenBLAS's
thread pool they wait for a second core that the sequence model, the embedder or another request is using:
measured in the service under load, one 7,600 x 64 product took 0.07-6.6 ms with two threads and a steady
0.1 ms with one. Training and bulk embedding keep their threads: only a request limits them, for its own
duration (threadpoolctl; the limit itself costs ~10 microseconds).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache

from threadpoolctl import ThreadpoolController


@cache
def _controller() -> ThreadpoolController:
    # Built on first use, after numpy, scipy and the rest have loaded their BLAS libraries.
    return ThreadpoolController()


@contextmanager
def one_blas_thread() -> Iterator[None]:
    with _controller().limit(limits=1, user_api="blas"):
        yield
