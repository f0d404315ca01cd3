"""Writes .env.example from the settings themselves: every variable, its default and its description.

    .venv/bin/python scripts/env_example.py > .env.example

tests/test_deployment_files.py checks that the file is what this prints, so the two cannot drift.
"""

from __future__ import annotations

import json
import textwrap
from enum import Enum
from pathlib import Path
from typing import Any

from pydantic import BaseModel, SecretStr
from pydantic_core import PydanticUndefined

from recommender.settings import CONVENTIONAL_ENV_NAMES, Settings

WIDTH = 110
HEAD = (
    "Every setting of the recommender, written from recommender/settings.py by scripts/env_example.py. "
    'Prefix RECO_, sections nested with "__". Copy to .env and uncomment what you change. The conventional '
    "names {names} are honoured too when the RECO_ form is unset."
)


def _value(default: Any) -> str:
    if default is None or isinstance(default, SecretStr):
        return ""
    if isinstance(default, bool):
        return str(default).lower()
    if isinstance(default, Enum):
        return str(default.value)
    if isinstance(default, Path | str | int | float):
        return str(default)
    return json.dumps(default)


def _comment(text: str) -> list[str]:
    wrapped = textwrap.wrap(" ".join(text.split()), WIDTH - 2, break_on_hyphens=False, break_long_words=False)
    return [f"# {line}" for line in wrapped]


def _section(title: str, prefix: str, model: type[BaseModel]) -> list[str]:
    lines = ["", f"# --- {title} ---"]
    if model.__doc__ and not model.__doc__.startswith(model.__name__ + "("):
        lines += _comment(model.__doc__)
    nested = []
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            nested.append((f"{title}.{name}", f"{prefix}{name.upper()}__", annotation))
            continue
        if field.description:
            lines += _comment(field.description)
        default = field.default_factory() if field.default is PydanticUndefined else field.default  # type: ignore[call-arg, misc]
        lines.append(f"# {prefix}{name.upper()}={_value(default)}")
    for section in nested:
        lines += _section(*section)
    return lines


def render() -> str:
    names = ", ".join(CONVENTIONAL_ENV_NAMES)
    lines = _comment(HEAD.format(names=names))
    for section, section_field in Settings.model_fields.items():
        model = section_field.annotation
        assert isinstance(model, type) and issubclass(model, BaseModel), section
        lines += _section(section, f"RECO_{section.upper()}__", model)
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(render(), end="")
