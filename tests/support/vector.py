"""Vector's configs in a render: which process loads which files, and their topology.

Vector does not run here (its VRL does: ``vrl.py``); these read the YAML as Vector
merges it and check what Vector would refuse or silently drop.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml


def read_yaml(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(path.read_text())
    return loaded


def merge_vector(configs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The files Vector loads together, as one config; a component id defined twice fails."""
    merged: dict[str, dict[str, Any]] = {"sources": {}, "transforms": {}, "sinks": {}}
    globals_seen: set[str] = set()
    for config in configs:
        for key, value in config.items():
            if key in merged:
                clash = merged[key].keys() & value.keys()
                assert not clash, f"{key} defined twice: {clash}"
                merged[key].update(value)
            else:
                assert key not in globals_seen, f"global option {key} set in two files"
                globals_seen.add(key)
    return merged


def assert_vector_topology(config: dict[str, dict[str, Any]]) -> None:
    """Every input names a source or transform; every sink is fed; nothing dangles."""
    producers = set(config["sources"]) | set(config["transforms"])
    consumed: set[str] = set()
    for kind in ("transforms", "sinks"):
        for name, component in config[kind].items():
            inputs = component.get("inputs")
            assert inputs, f"{kind[:-1]} {name} has no inputs"
            assert set(inputs) <= producers, f"{name} reads undefined {set(inputs) - producers}"
            consumed |= set(inputs)
    assert config["sinks"], "no sink"
    assert producers <= consumed, f"outputs nobody reads: {producers - consumed}"


def vector_sets(project: Path, pipeline: str) -> dict[str, list[Path]]:
    """The Vector processes of a render and the files each loads (compose's command lines)."""
    base = project / "observability/vector"
    sink = "elasticsearch.yaml" if pipeline == "vector-elasticsearch" else "kafka.yaml"
    sets = {"agent": [base / "sources-docker.yaml", base / "parse.yaml", base / sink]}
    if pipeline == "vector-kafka-elasticsearch":
        sets["aggregator"] = [base / "aggregator.yaml"]
    return sets


def env_references(text: str) -> set[str]:
    """``${VAR}`` and ``sys.env("VAR")`` in a Vector or Alloy config."""
    return set(re.findall(r"\$\{([A-Z_][A-Z0-9_]*)", text)) | set(
        re.findall(r'sys\.env\("([A-Z_][A-Z0-9_]*)"\)', text)
    )


def remap_programs(config: dict[str, dict[str, Any]]) -> dict[str, str]:
    """The VRL source of every remap transform, by component id."""
    return {
        name: component["source"]
        for name, component in config["transforms"].items()
        if component["type"] == "remap"
    }
