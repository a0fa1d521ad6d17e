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

# The secrets toggle: each auth method once, on the three Pythons.
VAULT_VARIANTS: list[Variant] = [
    ("vault-approle", {"secrets_backend": "vault", "vault_auth": "approle"}),
    (
        "vault-token-py311",
        {"secrets_backend": "vault", "vault_auth": "token", "python_version": "3.11"},
    ),
    (
        "vault-kubernetes-py313",
        {"secrets_backend": "vault", "vault_auth": "kubernetes", "python_version": "3.13"},
    ),
]

MATRIX: list[Variant] = IDENTITY_VARIANTS + VAULT_VARIANTS
