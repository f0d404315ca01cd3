"""Real servers in their own processes on loopback ports, for tests and benchmarks (``python -m bench.X``):
the service as clients see it (fuzzing, faults, the browser, load) and llama.cpp's OpenAI-compatible server.

One way to start and wait: ``running`` starts the command, polls a URL (sleeping between tries) until it
answers 200, and raises with the end of the log when the process exits or the time runs out."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]


class ServerDidNotStart(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def service_environment(root: Path, **settings: str) -> dict[str, str]:
    """This process's environment without its RECO_ settings, stores under ``root``, plus ``settings``."""
    base = {name: value for name, value in os.environ.items() if not name.startswith("RECO_")}
    return {
        **base,
        "HF_HUB_OFFLINE": "1",
        "RECO_QDRANT__PATH": str(root / "qdrant"),
        "RECO_EVENTS__URL": f"sqlite:///{root / 'events.db'}",
        "RECO_API__UPLOAD_DIR": str(root / "uploads"),
        "RECO_COLLAB__MODELS_PATH": str(root / "models"),
        **settings,
    }


@contextmanager
def running(
    command: Sequence[str],
    ready_url: str,
    *,
    log_path: Path | None = None,
    env: dict[str, str] | None = None,
    cwd: Path = ROOT,
    timeout: float = 180,
) -> Iterator[subprocess.Popen]:
    """``command`` until ``ready_url`` answers 200; stopped on exit (if still alive). Its output goes to
    ``log_path`` (quoted when it does not start), or nowhere."""
    log = log_path.open("a") if log_path is not None else None
    process = subprocess.Popen(
        list(command), env=env, cwd=cwd, stdout=log or subprocess.DEVNULL, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                if httpx.get(ready_url, timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                said = log_path.read_text()[-3000:] if log_path is not None else "(no log kept)"
                raise ServerDidNotStart(f"{' '.join(command[:6])} did not answer {ready_url}: {said}")
            time.sleep(0.3)
        yield process
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(30)
        if log is not None:
            log.close()


@contextmanager
def live_service(
    root: Path, port: int, command: str = "serve", timeout: float = 180, cwd: Path = ROOT, **settings: str
) -> Iterator[subprocess.Popen]:
    """``recommender COMMAND --port PORT`` with its stores under ``root``, until it answers /health. Its
    output goes to ``root/server-PORT.log``. ``cwd`` outside the checkout (with PYTHONPATH among
    ``settings``) runs an installed copy instead of the checkout."""
    with running(
        [sys.executable, "-c", "from cli.main import main; main()", command, "--port", str(port)],
        f"http://127.0.0.1:{port}/health",
        log_path=root / f"server-{port}.log",
        env=service_environment(root, **settings),
        cwd=cwd,
        timeout=timeout,
    ) as process:
        yield process


@contextmanager
def llama_cpp_server(model: Path, port: int, threads: int = 2, timeout: float = 120) -> Iterator[str]:
    """llama.cpp's OpenAI-compatible server for a GGUF file; yields its ``/v1`` base URL once it answers."""
    base = f"http://127.0.0.1:{port}/v1"
    command = [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        str(model),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--n_ctx",
        "4096",
        "--n_threads",
        str(threads),
    ]
    with running(command, f"{base}/models", timeout=timeout):
        yield base
