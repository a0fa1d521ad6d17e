"""What every deploy target renders: only its own deploy files, and the local stack.

compose.yaml is rendered for every target (local use) and passes the real `docker
compose config`; the Dockerfile passes hadolint; deploy/ holds the chosen target's
files and nothing else; the Helm chart and the Swarm stack leave trace sampling at
the service's own default.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from .support.compose import compose_json
from .support.dockerfile import hadolint
from .support.helm_chart import chart_dir, config_data, render_chart
from .support.project import project_python, tool_env
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


# What the service's tracing makes of its environment: the sampler the SDK runs, and
# whether a caller's sampled flag is re-drawn (not trusted).
SAMPLING_PROBE = """
import json
from opentelemetry.sdk.trace import TracerProvider
from my_service.observability.tracing import create_sampler, sampling_ratio
ratio = sampling_ratio()
sampler = TracerProvider(sampler=create_sampler(ratio)).sampler
print(json.dumps({"sampler": sampler.get_description(), "caller_flag_redrawn": ratio is not None}))
"""


def effective_sampling(project: Path, otel: dict[str, str]) -> dict[str, object]:
    """The sampling the rendered service runs with exactly the ``otel`` variables set."""
    env = {k: v for k, v in tool_env().items() if not k.startswith("OTEL_")} | otel
    result = subprocess.run(
        [project_python(project), "-c", SAMPLING_PROBE],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    found: dict[str, object] = json.loads(result.stdout)
    return found


def deployed_otel(project: Path, target: str) -> dict[str, str]:
    """The OTEL_* variables the target's deploy files give the service by default."""
    if target == "kubernetes":
        manifests, _ = render_chart(project)
        environment = config_data(manifests)
    else:
        stack = compose_json(
            project,
            "deploy/swarm/stack.yaml",
            project_name=SLUG,
            env={"IMAGE": "registry.example.com/my-service:1.0.0"},
        )
        environment = stack["services"][SLUG]["environment"]
    return {k: str(v) for k, v in environment.items() if k.startswith("OTEL_")}


@pytest.mark.parametrize("target", ["kubernetes", "swarm"])
def test_deploy_files_sample_traces_as_the_code_does_by_default(
    rendered_projects: KeyedRenders, default_project: Path, target: str
) -> None:
    """Issue 15: the chart and the stack sampled 100 % against the code's 5 %.

    The deploy files' OTEL_* variables, given to the service's own tracing code (the
    default project's: deploy_target changes no Python file), give the sampler it
    runs with none of them set, and a caller's flag is not trusted.
    """
    otel = deployed_otel(rendered_projects[f"{target}:env-otlp-grpc"], target)
    assert "OTEL_SERVICE_NAME" in otel, otel  # the tracing variables are there at all
    code_default = effective_sampling(default_project, {})
    assert "0.05" in str(code_default["sampler"])
    assert code_default["caller_flag_redrawn"] is True
    assert effective_sampling(default_project, otel) == code_default
