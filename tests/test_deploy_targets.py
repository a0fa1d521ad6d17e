"""What every deploy target renders: only its own deploy files, and the local stack.

compose.yaml is rendered for every target (local use) and passes the real `docker
compose config`; the Dockerfile passes hadolint; deploy/ holds the chosen target's
files and nothing else.
"""

from __future__ import annotations

import pytest

from .support.compose import compose_json
from .support.dockerfile import hadolint
from .support.helm_chart import chart_dir
from .support.questions import choices
from .support.renders import KeyedRenders

# Renders shared with the other deploy modules: one xdist worker runs them all.
pytestmark = pytest.mark.xdist_group("deploy")

SLUG = "my-service"


def test_chart_is_rendered_only_for_kubernetes(rendered_projects: KeyedRenders) -> None:
    assert not (rendered_projects["compose:env-otlp-grpc"] / "deploy").exists()
    kubernetes = rendered_projects["kubernetes:env-otlp-grpc"]
    assert sorted(p.name for p in (kubernetes / "deploy").iterdir()) == ["helm"]
    assert not (chart_dir(kubernetes) / "files/alerts.yml").is_symlink()
    swarm = rendered_projects["swarm:env-otlp-grpc"]
    assert sorted(p.name for p in (swarm / "deploy").iterdir()) == ["swarm"]


@pytest.mark.parametrize("target", [t for t in choices("deploy_target") if t != "compose"])
def test_every_target_keeps_the_local_stack_and_a_clean_dockerfile(
    rendered_projects: KeyedRenders, target: str
) -> None:
    project = rendered_projects[f"{target}:env-otlp-grpc"]
    assert SLUG in compose_json(project)["services"]
    lint = hadolint(project)
    assert lint.returncode == 0, lint.stdout + lint.stderr
