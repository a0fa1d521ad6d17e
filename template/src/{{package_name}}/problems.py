"""RFC 9457 problem details: the body of every error response."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any, Final

PROBLEM_JSON: Final = "application/problem+json"


def problem(status: int, detail: str | None = None, **extensions: Any) -> dict[str, Any]:
    """A problem document; ``type`` stays ``about:blank``, so ``title`` is the status phrase."""
    phrase = HTTPStatus(status).phrase
    return {
        "type": "about:blank",
        "title": phrase,
        "status": status,
        "detail": detail or phrase,
        **extensions,
    }
