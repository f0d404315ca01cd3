"""The real LLM parts: SmolLM2-135M-Instruct in-process (llama.cpp) and behind llama.cpp's
OpenAI-compatible server on loopback; plus loopback servers that die or hang, for the failure paths."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from recommender.llm.chat import LocalGGUFChat
from recommender.service import RecommenderService, build_service
from recommender.settings import LLMConfig, LLMExperiments
from tests.conftest import import_demo_catalog, make_settings
from tests.live_service import free_port, llama_cpp_server

# Generous for functional tests on a loaded 2-core machine (30 s was exceeded once, with the suite running
# beside a training job); the budget itself is tested separately.
FUNCTIONAL_BUDGET = 120.0


@pytest.fixture(scope="session")
def local_chat(gguf_path: Path) -> LocalGGUFChat:
    return LocalGGUFChat(LLMConfig(backend="local", model=str(gguf_path)))


@pytest.fixture(scope="session")
def llama_server(gguf_path: Path) -> Iterator[str]:
    """``python -m llama_cpp.server`` serving SmolLM2 on a loopback port; yields its /v1 URL."""
    with llama_cpp_server(gguf_path, free_port()) as base:
        yield base


@pytest.fixture
def hanging_server() -> Iterator[str]:
    """A loopback TCP server that accepts connections and never answers: an LLM endpoint that hangs."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
                held.append(connection)
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}/v1"
    stop.set()
    thread.join(2)
    for connection in held:
        connection.close()
    listener.close()


def llm_service(tmp_path: Path, embedder, **llm: object) -> RecommenderService:
    """A service with these LLM settings (operator settings and experimental knobs alike)."""
    knobs = {name: value for name, value in llm.items() if name in LLMExperiments.model_fields}
    operator = {name: value for name, value in llm.items() if name not in knobs}
    settings = make_settings(tmp_path, llm=operator, experimental={"llm": knobs})
    service = build_service(settings, embedder=embedder)
    import_demo_catalog(service)
    return service
