"""Jinja filters for Shipshape's questionnaire.

Each ``*_error`` filter returns an empty string for a valid answer and otherwise
one sentence that says what is wrong and what is allowed; Copier shows it and
asks again (or refuses a ``--data`` answer) without writing anything.

Copier evaluates these filters while it prompts, when later answers do not exist
yet, so every filter looks only at the value it is given and tolerates ``None``.
"""

from __future__ import annotations

import keyword
import re
import sys
import unicodedata
from typing import Any

from jinja2 import Environment
from jinja2.ext import Extension

PROJECT_NAME_MAX = 64
ONE_LINE = "must be one line of printable characters (no tabs, newlines or control characters)."
DNS_LABEL = re.compile(r"^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$")
PACKAGE = re.compile(r"^[a-z][a-z0-9_]*$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")

# Import names the generated project depends on (runtime, dev and optional parts)
# and names its own tree already uses. A package with one of these names would
# shadow the real module on sys.path.
TAKEN_IMPORT_NAMES = frozenset(
    {
        "aiosqlite",
        "alembic",
        "anyio",
        "asyncpg",
        "coverage",
        "fastapi",
        "grpc",
        "h11",
        "httptools",
        "httpx",
        "hvac",
        "locust",
        "mako",
        "migrations",
        "mypy",
        "opentelemetry",
        "orjson",
        "prometheus_client",
        "pydantic",
        "pydantic_core",
        "pydantic_settings",
        "pytest",
        "requests",
        "ruff",
        "sniffio",
        "sqlalchemy",
        "starlette",
        "structlog",
        "tests",
        "typing_extensions",
        "uvicorn",
        "uvloop",
        "watchfiles",
        "websockets",
        "yaml",
    }
)


def slugify(value: Any) -> str:
    """Turn a project name into a DNS-1123 label (``My Service`` -> ``my-service``).

    Accents are folded to ASCII; a name with no usable letters becomes
    ``service``; a slug that would start with a digit gets a ``svc-`` prefix.
    """
    text = unicodedata.normalize("NFKD", str(value or "")).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    if not slug:
        return "service"
    if not slug[0].isalpha():
        slug = f"svc-{slug}"
    return slug[:63].rstrip("-")


def project_name_error(value: Any) -> str:
    text = str(value or "")
    if not text.strip():
        return "project_name must not be empty: give the service a human-readable name."
    if len(text) > PROJECT_NAME_MAX:
        return (
            f"project_name is {len(text)} characters long; at most {PROJECT_NAME_MAX} are allowed."
        )
    if any(unicodedata.category(char).startswith("C") for char in text):
        return f"project_name {ONE_LINE}"
    return ""


def slug_error(value: Any) -> str:
    text = str(value or "")
    if DNS_LABEL.match(text):
        return ""
    return (
        f"project_slug {text!r} is not a DNS-1123 label: use 1 to 63 characters of "
        "lower-case letters, digits and '-', starting with a letter and not ending with '-' "
        "(for example 'billing-api')."
    )


def package_name_error(value: Any) -> str:
    text = str(value or "")
    if not PACKAGE.match(text):
        return (
            f"package_name {text!r} is not allowed: use lower-case letters, digits and '_', "
            "starting with a letter (for example 'billing_api')."
        )
    if keyword.iskeyword(text):
        return (
            f"package_name {text!r} is a Python keyword; "
            f"choose another name (for example '{text}_service')."
        )
    if text in sys.stdlib_module_names:
        return (
            f"package_name {text!r} would shadow the standard library module of that name; "
            f"choose another name (for example '{text}_service')."
        )
    if text in TAKEN_IMPORT_NAMES:
        return (
            f"package_name {text!r} would shadow a module the project depends on or already uses; "
            f"choose another name (for example '{text}_service')."
        )
    return ""


def one_line_error(value: Any, question: str) -> str:
    text = str(value or "")
    if any(unicodedata.category(char).startswith("C") for char in text):
        return f"{question} {ONE_LINE}"
    return ""


def email_error(value: Any) -> str:
    text = str(value or "")
    if EMAIL.match(text):
        return ""
    return f"author_email {text!r} is not an e-mail address: use the form name@example.com."


class ShipshapeExtension(Extension):
    """Registers the questionnaire's filters on Copier's Jinja environment."""

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        environment.filters.update(
            slugify=slugify,
            project_name_error=project_name_error,
            slug_error=slug_error,
            package_name_error=package_name_error,
            one_line_error=one_line_error,
            email_error=email_error,
        )
