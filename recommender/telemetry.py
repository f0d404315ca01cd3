"""Counters of the core's outcomes, exported by the API's /metrics (Prometheus)."""

from __future__ import annotations

from prometheus_client import Counter

LLM_FALLBACKS = Counter(
    "recommender_llm_fallbacks_total",
    "LLM steps that fell back to the retrieval order or a template, by step and reason.",
    ["step", "reason"],
)
IMPORT_ROWS = Counter("recommender_import_rows_total", "Catalog rows imported, by outcome.", ["outcome"])


def fallback_reason(note: str) -> str:
    """A fallback's note as one of a few labels (a metric label must not take free text)."""
    lowered = note.lower()
    for label, words in (
        ("no_llm", ("no llm",)),
        ("busy", ("busy",)),
        ("timeout", ("budget", "time")),
        ("rejected", ("rejected",)),
        ("error", ("failed", "error")),
    ):
        if any(word in lowered for word in words):
            return label
    return "other"


def count_fallback(step: str, note: str) -> None:
    LLM_FALLBACKS.labels(step=step, reason=fallback_reason(note)).inc()
