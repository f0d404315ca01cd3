"""The fixed chat evaluation set through the real chat: no garbage reaches the client, with the local model
(SmolLM2 in-process) or without a model, and the answers state facts computed from the data."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from bench.chat_set import CHAT_CASES, prepare_software_catalog, run_chat_set
from recommender.demo import demo_events
from recommender.service import RecommenderService, build_service
from tests.conftest import import_demo_catalog, make_settings


def test_the_set_covers_what_the_issue_asks_for() -> None:
    kinds = Counter(case.kind for case in CHAT_CASES)
    assert len(CHAT_CASES) >= 60
    assert {"why", "cheaper", "difference", "follow-up", "off-topic", "injection"} <= set(kinds)
    assert {case.language for case in CHAT_CASES} == {"en", "zh"}
    assert {case.catalog for case in CHAT_CASES} == {"demo", "software"}


@pytest.fixture
def services(
    request: pytest.FixtureRequest, tmp_path: Path, embedder
) -> Iterator[dict[str, RecommenderService]]:
    llm = request.param
    with ExitStack() as stack:
        built = {}
        for catalog in ("demo", "software"):
            settings = make_settings(tmp_path / catalog, llm={**llm, "timeout_seconds": 60.0})
            service = build_service(settings, embedder=embedder)
            stack.callback(service.close)
            if catalog == "demo":
                import_demo_catalog(service)
                service.events.add(demo_events())
            else:
                prepare_software_catalog(service)
            built[catalog] = service
        yield built


@pytest.mark.parametrize(
    "services", [{"backend": "none"}, {"backend": "local"}], indirect=True, ids=["none", "local"]
)
@pytest.mark.slow  # 61 chat turns through the tiny LLM (about 45 s)
def test_no_garbage_reaches_the_client(services: dict[str, RecommenderService]) -> None:
    scores = run_chat_set(services)
    summary = scores.summary()
    garbage = [(o.case.message, o.answer, o.garbage) for o in scores.outcomes if o.garbage]
    assert summary["garbage_reaching_client"] == 0, garbage
    assert summary["turns"] == len(CHAT_CASES)
    # Templates state computed facts by construction; generated answers must pass the same gate.
    assert summary["grounded_fact_rate"] >= 0.95, [o.answer for o in scores.outcomes if not o.grounded]
    differences = [o for o in scores.outcomes if o.case.message == "这个和Trello有什么区别？"]
    assert differences and all("5.00" in o.answer for o in differences if o.source == "template")
