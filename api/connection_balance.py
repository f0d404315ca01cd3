"""Keep-alive connections spread evenly over the API processes of ``recommender serve --workers N``.

The API processes share one listening socket, and the kernel gives each new connection to whichever
process accepts it first; a keep-alive connection then stays with that process for its life. Eight clients
that connect at once can land six on one process and two on the other: at 100k products on 2 cores that
run served 89 requests/s with a p99 of 108 ms, against 110-130 requests/s and a p99 of 75-100 ms when the
connections landed four and four (``bench/query.py --personal --clients 8 --workers 2``).

So each process counts the client connections it served in the last ``WINDOW_SECONDS`` and publishes the
count in a small file shared by the processes (one slot each). A process holding at least two connections
more than the least-loaded other process answers one request with ``Connection: close`` (at most one every
``HOLD_SECONDS``): the client reconnects, the kernel hands the new connection to a process again, and this
repeats until the counts differ by at most one. Clients that open a connection per request are unaffected.
"""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path

import numpy as np
from starlette.types import ASGIApp, Message, Receive, Scope, Send

WINDOW_SECONDS = 1.0  # a connection counts while it sent a request this recently
HOLD_SECONDS = 0.1  # a process closes at most one connection this often
PUBLISH_SECONDS = 0.1  # how often a process recounts and publishes its connections
SLOT = np.dtype([("pid", "<i8"), ("connections", "<i8"), ("published", "<f8")])


def create_table(path: Path, processes: int) -> None:
    """An empty table for ``processes`` API processes (``recommender serve`` writes it before they start)."""
    path.write_bytes(bytes(SLOT.itemsize * processes))


class NoFreeSlotError(RuntimeError):
    pass


class ConnectionTable:
    """This process's slot in the shared table, claimed on opening (the slot of a process that exited is
    taken over), and every process's published count."""

    def __init__(self, path: Path, pid: int | None = None) -> None:
        self.pid = pid or os.getpid()
        self._slots = np.memmap(path, dtype=SLOT, mode="r+")
        with path.open("rb") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                self._mine = self._claim()
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _claim(self) -> int:
        for index, owner in enumerate(self._slots["pid"]):
            if owner in (0, self.pid) or not _alive(int(owner)):
                self._slots[index] = (self.pid, 0, 0.0)
                return index
        raise NoFreeSlotError(f"no free slot among {len(self._slots)} API processes")

    def publish(self, connections: int, now: float) -> None:
        self._slots[self._mine] = (self.pid, connections, now)

    def fewest_elsewhere(self, now: float) -> int | None:
        """The fewest connections another live process holds (one that published nothing lately holds
        none); None when no other is running."""
        held = [
            int(connections) if published > now - WINDOW_SECONDS else 0
            for index, (pid, connections, published) in enumerate(self._slots.tolist())
            if index != self._mine and pid and _alive(pid)
        ]
        return min(held, default=None)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class ConnectionBalance:
    """ASGI middleware: counts this process's client connections and closes one when it holds too many."""

    def __init__(self, app: ASGIApp, table: ConnectionTable) -> None:
        self._app = app
        self._table = table
        self._last_seen: dict[tuple[str, int], float] = {}
        self._published = 0.0
        self._fewest_elsewhere: int | None = None
        self._closed = 0.0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        client = scope.get("client")
        if scope["type"] != "http" or not client:
            await self._app(scope, receive, send)
            return
        connection = (client[0], client[1])
        now = time.monotonic()
        new = connection not in self._last_seen
        self._last_seen[connection] = now
        if now - self._published >= PUBLISH_SECONDS:
            self._recount(now)
        elif new:  # the others see a connection that moved here at once
            self._table.publish(len(self._last_seen), now)
        if not self._holds_too_many(now):
            await self._app(scope, receive, send)
            return
        del self._last_seen[connection]
        self._table.publish(len(self._last_seen), now)
        self._closed = now

        async def closing_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", ()), (b"connection", b"close")]}
            await send(message)

        await self._app(scope, receive, closing_send)

    def _recount(self, now: float) -> None:
        recent = now - WINDOW_SECONDS
        self._last_seen = {client: seen for client, seen in self._last_seen.items() if seen > recent}
        self._table.publish(len(self._last_seen), now)
        self._fewest_elsewhere = self._table.fewest_elsewhere(now)
        self._published = now

    def _holds_too_many(self, now: float) -> bool:
        fewest = self._fewest_elsewhere
        if fewest is None or len(self._last_seen) < fewest + 2 or now - self._closed < HOLD_SECONDS:
            return False
        self._fewest_elsewhere = fewest = self._table.fewest_elsewhere(now)  # as they are now
        return fewest is not None and len(self._last_seen) >= fewest + 2
