"""The questionnaire as copier.yml states it: the tests read choices here, never copy them."""

from __future__ import annotations

from functools import cache
from typing import Any

import yaml

from .project import TEMPLATE_ROOT


@cache
def questions() -> dict[str, dict[str, Any]]:
    """Every question of copier.yml (keys not starting with ``_``), in file order."""
    loaded: dict[str, Any] = yaml.safe_load((TEMPLATE_ROOT / "copier.yml").read_text())
    return {key: value for key, value in loaded.items() if not key.startswith("_")}


def choices(key: str) -> list[str]:
    """The values a question accepts, in copier.yml's order.

    Copier takes a list of values or a mapping of label to value; either way these
    are the values an answer (and ``.copier-answers.yml``) holds.
    """
    listed = questions()[key]["choices"]
    values = list(listed.values()) if isinstance(listed, dict) else list(listed)
    assert all(isinstance(value, str) for value in values), (key, values)
    return values


def default(key: str) -> Any:
    return questions()[key].get("default")


def toggles() -> list[str]:
    """The questions with a fixed set of answers."""
    return [key for key, question in questions().items() if "choices" in question]
