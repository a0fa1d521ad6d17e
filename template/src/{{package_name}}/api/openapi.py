"""The OpenAPI document as the service behaves: each job kind's payload, problem+json errors.

FastAPI derives the document from the route signatures, which know a submission
as ``{"kind": str, "payload": object}``. The kinds are known only when the app is
built, so ``document_job_kinds`` adds them once, when the document is first asked
for: ``JobSubmission`` becomes a ``oneOf`` of one schema per kind (``kind`` a
constant, ``payload`` that kind's model), with a discriminator on ``kind``. Clients
and generators (schemathesis) see what each kind accepts.

Error responses are documented as ``application/problem+json`` with the Problem
schema, the content type they are sent with, instead of FastAPI's
``application/json`` alias.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Final

from fastapi import FastAPI

from ..domain.kinds import JobKinds
from ..problems import PROBLEM_JSON

SUBMISSION: Final = "JobSubmission"
_REF: Final = "#/components/schemas/{model}"
_UNSAFE_NAME: Final = re.compile(r"[^A-Za-z0-9._-]")

Schema = dict[str, Any]


def document_job_kinds(app: FastAPI, kinds: JobKinds) -> None:
    """Make ``app.openapi()`` publish ``kinds`` and problem+json error bodies."""
    build: Callable[[], Schema] = app.openapi
    completed = False

    def openapi() -> Schema:
        nonlocal completed
        document = build()  # FastAPI caches it: this edits the cached document once
        if not completed:
            components: Schema = document.setdefault("components", {}).setdefault("schemas", {})
            if SUBMISSION in components and kinds.names:
                _publish_kinds(components, kinds)
            _problem_bodies(document)
            completed = True
        return document

    app.openapi = openapi  # type: ignore[method-assign]


def _publish_kinds(components: Schema, kinds: JobKinds) -> None:
    variants = {}
    for name in kinds.names:
        model = kinds[name].payload_model
        payload = model.model_json_schema(ref_template=_REF)
        for defined, schema in payload.pop("$defs", {}).items():
            components.setdefault(defined, schema)
        payload_name = f"{_component_name(name)}Payload"
        components[payload_name] = payload
        variant_name = f"{_component_name(name)}JobSubmission"
        components[variant_name] = {
            "title": f"{name} job",
            "type": "object",
            "properties": {
                "kind": {"const": name},
                "payload": {"$ref": _REF.format(model=payload_name)},
            },
            "required": ["kind", "payload"] if payload.get("required") else ["kind"],
            "additionalProperties": False,
        }
        variants[name] = _REF.format(model=variant_name)
    submission = components[SUBMISSION]
    submission["oneOf"] = [{"$ref": ref} for ref in variants.values()]
    submission["discriminator"] = {"propertyName": "kind", "mapping": variants}


def _component_name(kind: str) -> str:
    """A component name from a kind name: ``send-email`` -> ``Send-email``."""
    safe = _UNSAFE_NAME.sub("_", kind)
    return safe[:1].upper() + safe[1:]


def _problem_bodies(document: Schema) -> None:
    problem = {"schema": {"$ref": _REF.format(model="Problem")}}
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            for response in operation.get("responses", {}).values():
                content = response.get("content", {})
                if PROBLEM_JSON in content:
                    content.pop("application/json", None)
                    content[PROBLEM_JSON] = problem
