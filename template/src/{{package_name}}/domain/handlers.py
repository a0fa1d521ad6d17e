"""The service's job kinds: payload models, handlers and the registry of them.

This module is yours: add a kind by writing its payload model and handler and listing
it in ``DEFAULT_KINDS``. ``copier update`` never changes this file once it exists.
"""

from __future__ import annotations

import asyncio

from pydantic import BaseModel, ConfigDict, Field

from .jobs import JsonObject
from .kinds import JobKind, JobKinds


class SleepPayload(BaseModel):
    """Payload of the example ``sleep`` kind."""

    model_config = ConfigDict(extra="forbid")

    seconds: float = Field(ge=0, le=60, allow_inf_nan=False, strict=True)


async def sleep(payload: SleepPayload) -> JsonObject:
    """Wait ``seconds``: the template's example of a job."""
    await asyncio.sleep(payload.seconds)
    return {"slept_seconds": payload.seconds}


DEFAULT_KINDS = JobKinds([JobKind("sleep", SleepPayload, sleep)])
