"""The answer combinations the template's tests render.

Every toggle adds its choices here; ``MATRIX`` is rendered and linted in full,
a covering subset is booted. Identity variants stress names and escaping.
"""

from __future__ import annotations

from typing import Any

Variant = tuple[str, dict[str, Any]]

IDENTITY_VARIANTS: list[Variant] = [
    ("defaults", {}),
    ("one-letter-py311", {"project_name": "X", "python_version": "3.11"}),
    (
        "digits-hyphens-py313",
        {"project_name": "2nd Gen Billing-API v3", "python_version": "3.13"},
    ),
    (
        "non-ascii-and-quotes",
        {
            "project_name": 'Überwachungs "Dienst" für Zähler',
            "description": 'Counts things; says "hello" and \\escapes\\ {{ braces }}',
            "author_name": "Zoë O'Brien",
            "author_email": "zoe.obrien@example.org",
        },
    ),
    (
        "longest-names",
        {
            "project_name": "N" * 64,
            "project_slug": "l" + "o" * 61 + "g",
            "package_name": "p" + "_" * 1 + "k" * 61,
        },
    ),
    (
        "explicit-slug-and-package",
        {"project_name": "Orders", "project_slug": "orders-api", "package_name": "orders_core"},
    ),
]

MATRIX: list[Variant] = IDENTITY_VARIANTS

# Tracing toggle: every exporter but the default otlp-grpc (that is "defaults"),
# each on another Python version; otlp-http and console are also booted by
# test_tracing.py.
TRACING_VARIANTS: list[Variant] = [
    ("tracing-none", {"tracing_exporter": "none"}),
    ("tracing-console-py311", {"tracing_exporter": "console", "python_version": "3.11"}),
    ("tracing-otlp-http-py313", {"tracing_exporter": "otlp-http", "python_version": "3.13"}),
]
MATRIX = [*MATRIX, *TRACING_VARIANTS]
