"""Prompt templates (files beside this module) and the delimiting of untrusted text."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from string import Template

PROMPT_DIR = Path(__file__).parent / "prompts"
# Catalog text and messages are data: nothing in them may open or close a data block.
_TAG = re.compile(r"</?\s*data\b[^>]*>", re.IGNORECASE)


@cache
def template(name: str) -> Template:
    return Template((PROMPT_DIR / f"{name}.txt").read_text())


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
