"""Each API process publishes how many client connections it holds; one holding two more than another
closes one (``Connection: close``), at most one per hold period. Two real uvicorn processes spreading real
connections: ``tests/cli/test_serve_workers.py``."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import anyio
import pytest
from starlette.types import Message, Receive, Scope, Send

from api import connection_balance
from api.connection_balance import (
    HOLD_SECONDS,
    PUBLISH_SECONDS,
    WINDOW_SECONDS,
    ConnectionBalance,
    ConnectionTable,
    NoFreeSlotError,
    create_table,
)


@pytest.fixture
def other_processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Two live processes whose pids stand for other API processes."""
    processes = [subprocess.Popen(["sleep", "60"]) for _ in range(2)]
    yield processes
    for process in processes:
        process.kill()
        process.wait()


def test_each_process_claims_its_own_slot_and_takes_over_an_exited_ones(
    tmp_path: Path, other_processes: list[subprocess.Popen[bytes]]
) -> None:
    path = tmp_path / "connections"
    create_table(path, 2)
    first, second = other_processes
    mine = ConnectionTable(path)
    other = ConnectionTable(path, pid=second.pid)
    assert mine.fewest_elsewhere(now=10.0) is None  # the other one has not published: not running yet
    other.publish(3, now=10.0)
    assert mine.fewest_elsewhere(now=10.5) == 3
    assert mine.fewest_elsewhere(now=20.0) is None  # it stopped publishing (stopped or exited): left out
    with pytest.raises(NoFreeSlotError):
        ConnectionTable(path, pid=first.pid)  # both slots are held by live processes
    second.kill()
    second.wait()
    # The second one has exited: another process takes its slot over.
    replacement = ConnectionTable(path, pid=first.pid)
    replacement.publish(1, now=30.0)
    assert mine.fewest_elsewhere(now=30.0) == 1


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def answer(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"ok"})


def scope_from(port: int) -> Scope:
    return {"type": "http", "method": "GET", "path": "/", "headers": [], "client": ("127.0.0.1", port)}


async def receive() -> Message:
    return {"type": "http.request", "body": b""}


def request(balance: ConnectionBalance, port: int) -> list[tuple[bytes, bytes]]:
    """One request from the client connection at ``port``; the response's headers."""
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    anyio.run(balance, scope_from(port), receive, send)
    return list(sent[0]["headers"])


def closes(headers: list[tuple[bytes, bytes]]) -> bool:
    return (b"connection", b"close") in headers


@dataclass
class TwoProcesses:
    """A table for two processes on a clock the test moves: this one's slot is claimed by the middleware,
    ``other`` stands for the second process."""

    clock: Clock
    path: Path
    other: ConnectionTable


@pytest.fixture
def two_processes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, other_processes: list[subprocess.Popen[bytes]]
) -> TwoProcesses:
    clock = Clock()
    monkeypatch.setattr(connection_balance.time, "monotonic", clock)
    path = tmp_path / "connections"
    create_table(path, 2)
    return TwoProcesses(clock, path, ConnectionTable(path, pid=other_processes[0].pid))


def test_a_process_holding_two_connections_more_than_another_closes_one(two_processes: TwoProcesses) -> None:
    clock, path, other = two_processes.clock, two_processes.path, two_processes.other
    other.publish(2, now=clock.now)
    balance = ConnectionBalance(answer, ConnectionTable(path), publish_every=None)
    balance.recount(clock.now)  # what the publishing thread does every PUBLISH_SECONDS

    # Three connections against the other's two: level enough.
    assert not any(closes(request(balance, port)) for port in (1001, 1002, 1003))
    # A fourth: this process holds two more, and that request's answer closes its connection.
    assert closes(request(balance, 1004))
    # The others keep theirs: one closed connection per hold period, whatever the counts.
    clock.now += HOLD_SECONDS / 2
    assert not any(closes(request(balance, port)) for port in (1001, 1002, 1003, 1005))
    # After the hold, this process holds four (1001-1003, 1005) against two: one more closes.
    clock.now += HOLD_SECONDS
    other.publish(2, now=clock.now)
    assert closes(request(balance, 1001))
    # The other process took the reconnected clients: three each, nothing more closes.
    clock.now += HOLD_SECONDS + PUBLISH_SECONDS
    other.publish(3, now=clock.now)
    balance.recount(clock.now)
    assert not any(closes(request(balance, port)) for port in (1002, 1003, 1005, 1002, 1003))
    assert request(balance, 1002) == [(b"content-type", b"text/plain")]  # the app's own headers, untouched


def test_a_connection_waiting_for_its_answer_stays_counted(two_processes: TwoProcesses) -> None:
    """Two requests that take longer than the window (a long chat answer) keep their connections counted."""
    clock, path, other = two_processes.clock, two_processes.path, two_processes.other

    async def scenario() -> tuple[int | None, int | None]:
        answered = anyio.Event()

        async def slow(scope: Scope, receive: Receive, send: Send) -> None:
            await answered.wait()
            await answer(scope, receive, send)

        async def send(message: Message) -> None:
            pass

        balance = ConnectionBalance(slow, ConnectionTable(path), publish_every=None)
        async with anyio.create_task_group() as requests:
            for port in (1001, 1002):
                requests.start_soon(balance, scope_from(port), receive, send)
            await anyio.wait_all_tasks_blocked()
            clock.now += 10 * WINDOW_SECONDS
            balance.recount(clock.now)
            while_waiting = other.fewest_elsewhere(clock.now)
            answered.set()
        clock.now += 10 * WINDOW_SECONDS
        balance.recount(clock.now)
        return while_waiting, other.fewest_elsewhere(clock.now)

    while_waiting, after = anyio.run(scenario)
    assert while_waiting == 2
    assert after == 0  # answered, and quiet since
