"""The rendered Helm chart through Helm's own engine in-process (helm-python-sdk), and
its manifests through `kubernetes-validate --strict`.

There is no helm binary to be had here. Every test that renders or lints a chart,
and ``helm_cli.py`` (the `helm` that the project's `make deploy-check` runs), goes
through the two functions below, so there is one Helm renderer and one notion of a
lint finding.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any, NamedTuple

import helm_python as helm
import yaml

from .project import TOOLS_BIN

KUBE_VALIDATE = str(TOOLS_BIN / "kubernetes-validate")
# The chart's kubeVersion floor, and the newest API kubernetes-validate knows.
KUBE_FLOOR = "v1.27.0"
KUBE_VERSIONS = ("1.27.0", "1.37.0")
# prometheus-operator kinds: kubernetes-validate has no schema for CRDs.
OPERATOR_KINDS = {"ServiceMonitor", "PrometheusRule"}
# Helm's limit for a release name (objects add suffixes up to 63 characters).
RELEASE_NAME_MAX = 53

Manifest = dict[str, Any]


def chart_dir(project: Path) -> Path:
    """The one chart a kubernetes render has: ``deploy/helm/<project_slug>``."""
    (chart,) = (project / "deploy" / "helm").iterdir()
    return chart


def render_files(
    chart: Path,
    values: dict[str, Any] | None = None,
    *,
    name: str | None = None,
    namespace: str = "apps",
) -> dict[str, str]:
    """`helm template` (as an install): each template file's rendered text, by path.

    The release is named after the chart (cut to Helm's 53 characters) unless ``name``
    says otherwise.
    """
    release = name or chart.name[:RELEASE_NAME_MAX]
    return helm.Chart.load(chart).render(values, name=release, namespace=namespace, is_install=True)


class RenderedChart(NamedTuple):
    manifests: list[Manifest]
    notes: str


def render_chart(
    project: Path, values: dict[str, Any] | None = None, **options: Any
) -> RenderedChart:
    """The chart of a render as manifests (in template file order) and NOTES.txt."""
    manifests: list[Manifest] = []
    notes = ""
    for name, text in sorted(render_files(chart_dir(project), values, **options).items()):
        if name.endswith("NOTES.txt"):
            notes = text
            continue
        manifests.extend(doc for doc in yaml.safe_load_all(text) if doc)
    return RenderedChart(manifests, notes)


def lint_problems(
    chart: Path,
    values: dict[str, Any] | None = None,
    *,
    strict: bool = True,
    kube_version: str | None = KUBE_FLOOR,
) -> list[dict[str, Any]]:
    """`helm lint [--strict]` findings of warning level or worse, then its errors.

    ``kube_version=None`` lints against Helm's own default (its newest) Kubernetes.
    Linting anything but exactly one chart is a finding too.
    """
    report = helm.lint(chart, values, strict=strict, kube_version=kube_version)
    problems: list[dict[str, Any]] = [m for m in report["messages"] if m["severity"] >= 2]
    problems += [{"error": error} for error in report["errors"]]
    if report["total_charts_linted"] != 1:
        problems.append({"error": f"linted {report['total_charts_linted']} charts, not 1"})
    return problems


def kubernetes_validate(manifests: list[Manifest], directory: Path) -> None:
    """Every manifest passes `kubernetes-validate --strict`; only CRDs lack a schema."""
    path = directory / "manifests.yaml"
    path.write_text(yaml.safe_dump_all(manifests, sort_keys=False))
    for version in KUBE_VERSIONS:
        result = subprocess.run(
            [KUBE_VALIDATE, "--strict", "-k", version, str(path)],
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        lines = result.stdout.splitlines()
        passed = [line for line in lines if line.startswith("INFO") and " passed " in line]
        warned = [line for line in lines if line.startswith("WARN")]
        assert not [line for line in lines if line.startswith(("ERROR", "FATAL"))], lines
        crds = [m for m in manifests if m["kind"] in OPERATOR_KINDS]
        assert len(passed) == len(manifests) - len(crds), lines
        assert len(warned) == len(crds), lines
        assert all("monitoring.coreos.com/v1" in line for line in warned), warned


def lint_and_validate_long_slug_chart(project: Path, slug: str, directory: Path) -> list[Manifest]:
    """`helm lint --strict` clean, rendered under the longest release name Helm allows
    (53), every manifest through kubernetes-validate; returns the manifests."""
    chart = project / "deploy/helm" / slug
    assert lint_problems(chart, kube_version=None) == []
    manifests, _ = render_chart(project, name=slug[:RELEASE_NAME_MAX])
    kubernetes_validate(manifests, directory)
    return manifests


# --- reading the manifests ----------------------------------------------------------


def by_kind(manifests: list[Manifest]) -> dict[str, Manifest]:
    """Manifests keyed by kind (the chart renders at most one object of each)."""
    kinds = [m["kind"] for m in manifests]
    assert len(kinds) == len(set(kinds)), kinds
    return {m["kind"]: m for m in manifests}


def of_kind(manifests: list[Manifest], kind: str) -> dict[str, Manifest]:
    """The manifests of one kind, by name (for kinds the chart renders several of)."""
    return {m["metadata"]["name"]: m for m in manifests if m["kind"] == kind}


def pod_spec(manifests: list[Manifest]) -> dict[str, Any]:
    spec: dict[str, Any] = by_kind(manifests)["Deployment"]["spec"]["template"]["spec"]
    return spec


def container_of(manifests: list[Manifest]) -> dict[str, Any]:
    (container,) = pod_spec(manifests)["containers"]
    assert isinstance(container, dict)
    return container


def config_data(manifests: list[Manifest]) -> dict[str, str]:
    data: dict[str, str] = by_kind(manifests)["ConfigMap"]["data"]
    return data


def matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    """A label selector that selects something and selects ``labels``."""
    return bool(selector) and selector.items() <= labels.items()
