"""Prompt templates (files beside this module) and the delimiting of untrusted text."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from string import Template

from recommender.errors import ConfigurationError

PROMPT_DIR = Path(__file__).parent / "prompts"
PROMPT_NAMES = ("system", "rerank", "explain", "chat")
# Catalog text and messages are data: nothing in them may open or close a data block.
_TAG = re.compile(r"</?\s*data\b[^>]*>", re.IGNORECASE)


@cache
def template(name: str) -> Template:
    return Template((PROMPT_DIR / f"{name}.txt").read_text())


def check_templates() -> None:
    """At start-up, when an LLM is configured: every prompt is readable (package data of an installed copy),
    or the service refuses to start instead of answering 500 at the first explanation."""
    for name in PROMPT_NAMES:
        try:
            template(name)
        except OSError as error:
            raise ConfigurationError(
                f"prompt template {name!r} cannot be read from {PROMPT_DIR}: {error}"
            ) from error


def system_prompt() -> str:
    return (PROMPT_DIR / "system.txt").read_text().strip()


def as_data(text: str, limit: int = 300) -> str:
    """Untrusted text made safe to place inside a data block: no tags, one line, bounded length."""
    cleaned = _TAG.sub(" ", text).replace("<", "‹").replace(">", "›")
    cleaned = " ".join(cleaned.split())
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 1] + "…"


def render(name: str, **fields: str) -> str:
    return template(name).substitute(**fields)


def leaks_system_prompt(text: str, window: int = 40) -> bool:
    """True when the answer repeats any 40-character stretch of the system prompt."""
    prompt = " ".join(system_prompt().lower().split())
    answer = " ".join(text.lower().split())
    return any(
        prompt[start : start + window] in answer for start in range(0, max(1, len(prompt) - window), 10)
    )
