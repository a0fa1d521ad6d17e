"""The answer sets the deploy-target tests render each target with.

Each is a secrets and tracing combination with assertions of its own in the tests
(every vault_auth once, every exporter once); ``"<deploy_target>:<name>"`` names a
render of one (``rendered_projects`` in conftest.py).
"""

from __future__ import annotations

from typing import Any

VAULT_K8S = {"secrets_backend": "vault", "vault_auth": "kubernetes", "tracing_exporter": "none"}
VAULT_APPROLE = {"secrets_backend": "vault", "vault_auth": "approle", "tracing_exporter": "console"}
VAULT_TOKEN = {"secrets_backend": "vault", "vault_auth": "token", "tracing_exporter": "otlp-http"}
ANSWER_SETS: dict[str, dict[str, str]] = {
    "env-otlp-grpc": {},
    "env-no-tracing": {"tracing_exporter": "none"},
    "vault-kubernetes": VAULT_K8S,
    "vault-approle-console": VAULT_APPROLE,
    "vault-token-otlp-http": VAULT_TOKEN,
}


def deploy_answers(key: str) -> dict[str, Any]:
    """``"kubernetes:vault-kubernetes"`` -> the answers of that render."""
    target, _, answer_set = key.partition(":")
    return {"deploy_target": target, **ANSWER_SETS[answer_set]}
