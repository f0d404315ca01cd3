"""Keep-alive connections spread evenly over the API processes of ``recommender serve --workers N``.

The API processes share one listening socket, and the kernel gives each new connection to whichever
process accepts it first; a keep-alive connection then stays with that process for its life. Eight clients
that connect at once can land five or six on one process and the rest on the other, and the split stays:
at 100k products on 2 cores those runs served 91-99 requests/s with a p99 of 101-116 ms, against 107-111
requests/s and 90-92 ms when the connections landed four and four
(``bench/query.py --personal --clients 8 --workers 2``).

So each process counts the client connections it holds: those that sent a request in the last
``WINDOW_SECONDS`` or wait for an answer now (a minute-long chat answer keeps its connection counted). A
thread publishes the count every ``PUBLISH_SECONDS`` in a small file shared by the processes (one slot
each), also while no request comes, so a slot that stops changing belongs to a process that does not run
(stopped, or exited) and is left out. A process holding at least two connections more than another answers
one request with ``Connection: close`` (at most one every ``HOLD_SECONDS``): the client reconnects, the
kernel hands the new connection to a process again, and this repeats until the counts differ by at most
one. Clients that open a connection per request are unaffected.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
import time
from pathlib import Path

import numpy as np
from starlette.types import ASGIApp, Message, Receive, Scope, Send

logger = logging.getLogger(__name__)

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
        """The fewest connections another running process holds; None when no other one runs (has
        published lately)."""
        held = [
            int(connections)
            for index, (pid, connections, published) in enumerate(self._slots.tolist())
            if index != self._mine and pid and published > now - WINDOW_SECONDS
        ]
        return min(held, default=None)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # another user's process: alive
    return True


class ConnectionBalance:
    """ASGI middleware: counts this process's client connections and closes one when it holds too many.
    ``publish_every`` None: no publishing thread (``recount`` is then called by hand, as the tests do)."""

    def __init__(
        self, app: ASGIApp, table: ConnectionTable, publish_every: float | None = PUBLISH_SECONDS
    ) -> None:
        self._app = app
        self._table = table
        # Written by the event loop's thread only; the publishing thread reads copies.
        self._last_seen: dict[tuple[str, int], float] = {}
        self._waiting: dict[tuple[str, int], int] = {}  # requests in progress per connection
        self._pruned = 0.0
        self._fewest_elsewhere: int | None = None
        self._closed = 0.0
        if publish_every is not None:
            threading.Thread(
                target=self._publish_forever, args=(publish_every,), name="connection-count", daemon=True
            ).start()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        client = scope.get("client")
        if scope["type"] != "http" or not client:
            await self._app(scope, receive, send)
            return
        connection = (client[0], client[1])
        now = time.monotonic()
        new = connection not in self._last_seen
        self._last_seen[connection] = now
        if now - self._pruned >= PUBLISH_SECONDS:
            self._last_seen = self._held(now)
            self._pruned = now
        if new:  # the others see a connection that moved here at once
            self._table.publish(len(self._last_seen), now)
        if self._holds_too_many(now):
            await self._close_after_answer(connection, now, scope, receive, send)
            return
        self._waiting[connection] = self._waiting.get(connection, 0) + 1
        try:
            await self._app(scope, receive, send)
        finally:
            self._waiting[connection] -= 1
            if not self._waiting[connection]:
                del self._waiting[connection]

    async def _close_after_answer(
        self, connection: tuple[str, int], now: float, scope: Scope, receive: Receive, send: Send
    ) -> None:
        del self._last_seen[connection]
        self._table.publish(len(self._last_seen), now)
        self._closed = now

        async def closing_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", ()), (b"connection", b"close")]}
            await send(message)

        await self._app(scope, receive, closing_send)

    def _held(self, now: float) -> dict[tuple[str, int], float]:
        """The connections this process holds: seen lately, or waiting for an answer."""
        recent = now - WINDOW_SECONDS
        waiting = self._waiting
        return {
            client: seen
            for client, seen in list(self._last_seen.items())
            if seen > recent or client in waiting
        }

    def recount(self, now: float) -> None:
        """Publishes this process's count and reads the others'."""
        self._table.publish(len(self._held(now)), now)
        self._fewest_elsewhere = self._table.fewest_elsewhere(now)

    def _publish_forever(self, every: float) -> None:
        while True:
            try:
                self.recount(time.monotonic())
            except Exception:  # keep publishing: a process that stops is left out of the balance
                logger.exception("could not publish this process's connection count")
            time.sleep(every)

    def _holds_too_many(self, now: float) -> bool:
        fewest = self._fewest_elsewhere
        if fewest is None or len(self._last_seen) < fewest + 2 or now - self._closed < HOLD_SECONDS:
            return False
        self._fewest_elsewhere = fewest = self._table.fewest_elsewhere(now)  # as they are now
        return fewest is not None and len(self._last_seen) >= fewest + 2
