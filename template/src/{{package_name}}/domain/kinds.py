"""Job kinds: each kind names a payload model and the coroutine that runs it.

The service's own kinds are registered in ``handlers.py``; the API refuses any other
kind, and any payload its model refuses, with 422 at submission.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from .jobs import FieldError, InvalidJobError, JsonObject


@dataclass(frozen=True, slots=True)
class JobKind:
    """A kind of job: its name, its payload's model and its handler.

    The handler receives an instance of ``payload_model``.
    """

    name: str
    payload_model: type[BaseModel]
    handler: Callable[[Any], Awaitable[JsonObject]]
    # A run longer than this fails its attempt; None: the service's JOB_TIMEOUT_SECONDS.
    timeout_seconds: float | None = None

    def validate(self, payload: JsonObject) -> JsonObject:
        """The payload as stored (normalised by the model); ValidationError if refused."""
        return self.payload_model.model_validate(payload).model_dump(mode="json")

    async def run(self, payload: JsonObject) -> JsonObject:
        """Run the handler on a stored payload and return its result."""
        return await self.handler(self.payload_model.model_validate(payload))


class JobKinds:
    """The registry of kinds a service accepts."""

    def __init__(self, kinds: Iterable[JobKind]) -> None:
        self._kinds = {kind.name: kind for kind in kinds}

    def __getitem__(self, name: str) -> JobKind:
        return self._kinds[name]

    @property
    def names(self) -> list[str]:
        """Registered kind names, sorted."""
        return sorted(self._kinds)

    def validate(self, kind: str, payload: JsonObject) -> JsonObject:
        """The normalised payload, or InvalidJobError naming every invalid field."""
        job_kind = self._kinds.get(kind)
        if job_kind is None:
            known = ", ".join(self.names)
            message = f"unknown job kind {kind!r}; known kinds: {known}"
            raise InvalidJobError([FieldError("body.kind", message, "unknown_kind")])
        try:
            return job_kind.validate(payload)
        except ValidationError as error:
            raise InvalidJobError(
                [
                    FieldError(
                        ".".join(["body", "payload", *(str(part) for part in item["loc"])]),
                        item["msg"],
                        item["type"],
                    )
                    for item in error.errors(include_input=False, include_url=False)
                ]
            ) from error
