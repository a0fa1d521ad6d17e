"""Reading a rendered Dockerfile and its build context the way Docker does, and hadolint.

No Docker daemon runs here: the tests read the instructions (``dockerfile_instructions``,
``stages``), replay them, and compute the build context from ``.dockerignore``.
"""

from __future__ import annotations

import json
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from .project import TOOLS_BIN, run

HADOLINT = str(TOOLS_BIN / "hadolint")


def hadolint(project: Path, dockerfile: str = "Dockerfile") -> subprocess.CompletedProcess[str]:
    """hadolint with warnings as failures; not checked (the caller asserts)."""
    return run([HADOLINT, "--failure-threshold", "warning", dockerfile], project, check=False)


@dataclass(frozen=True)
class Instruction:
    keyword: str
    arguments: str


def dockerfile_instructions(path: Path) -> list[Instruction]:
    """The instructions of a Dockerfile, continuation lines joined, comments dropped."""
    instructions: list[Instruction] = []
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):  # also inside a continued instruction
            continue
        if line.endswith("\\"):
            pending += line[:-1].strip() + " "
            continue
        whole = (pending + line).strip()
        pending = ""
        keyword, _, arguments = whole.partition(" ")
        instructions.append(Instruction(keyword.upper(), arguments.strip()))
    assert not pending, f"{path} ends inside a continued line"
    return instructions


def stages(instructions: list[Instruction]) -> dict[str, list[Instruction]]:
    """Instructions grouped by build stage name (``FROM image AS name``)."""
    grouped: dict[str, list[Instruction]] = {}
    current: list[Instruction] = []
    for instruction in instructions:
        if instruction.keyword == "FROM":
            words = instruction.arguments.split()
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else words[0]
            current = grouped.setdefault(name, [])
        current.append(instruction)
    return grouped


def runtime_stage(project: Path) -> list[Instruction]:
    """The instructions of the image's final stage, ``runtime``."""
    return stages(dockerfile_instructions(project / "Dockerfile"))["runtime"]


def exec_form(arguments: str) -> list[str]:
    """The JSON array of an exec-form CMD/HEALTHCHECK CMD; fails on shell form."""
    argv = json.loads(arguments)
    assert isinstance(argv, list), arguments
    assert all(isinstance(word, str) for word in argv), arguments
    return argv


def env_of(instructions: list[Instruction]) -> dict[str, str]:
    """The ``ENV key=value ...`` settings of a stage (values without spaces)."""
    env: dict[str, str] = {}
    for instruction in instructions:
        if instruction.keyword == "ENV":
            for pair in instruction.arguments.split():
                key, _, value = pair.partition("=")
                env[key] = value
    return env


def healthcheck_argv(instructions: list[Instruction]) -> list[str]:
    """The exec-form command of the stage's one HEALTHCHECK (options before CMD)."""
    (healthcheck,) = [i for i in instructions if i.keyword == "HEALTHCHECK"]
    options, marker, command = healthcheck.arguments.partition("CMD ")
    assert marker, healthcheck
    assert all(word.startswith("--") for word in options.split()), healthcheck
    return exec_form(command)


def user_of(instructions: list[Instruction]) -> str:
    """The stage's one ``USER`` (``uid:gid``)."""
    (user,) = [i.arguments for i in instructions if i.keyword == "USER"]
    return user


def glob_regex(pattern: str) -> re.Pattern[str]:
    """A .dockerignore pattern as a regex: ``*`` and ``?`` stay in one path segment,
    ``**`` spans segments."""
    out = []
    index = 0
    while index < len(pattern):
        if pattern.startswith("**/", index):
            out.append("(?:.*/)?")
            index += 3
        elif pattern.startswith("**", index):
            out.append(".*")
            index += 2
        elif pattern[index] == "*":
            out.append("[^/]*")
            index += 1
        elif pattern[index] == "?":
            out.append("[^/]")
            index += 1
        elif pattern[index] == "[":
            end = pattern.index("]", index)
            out.append(pattern[index : end + 1])
            index = end + 1
        else:
            out.append(re.escape(pattern[index]))
            index += 1
    return re.compile("".join(out))


def docker_context(root: Path) -> set[str]:
    """Files under ``root`` that its ``.dockerignore`` lets into the build context.

    Docker's rules: patterns in order, the last match wins, ``!`` re-includes, a
    pattern also matches everything under a matching directory.
    """
    rules: list[tuple[bool, re.Pattern[str]]] = []
    for raw in (root / ".dockerignore").read_text().splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            rules.append((line.startswith("!"), glob_regex(line.lstrip("!").strip("/"))))
    selected: set[str] = set()
    for path in root.rglob("*"):
        if not path.is_file():
            continue
        parts = path.relative_to(root).parts
        prefixes = ["/".join(parts[: index + 1]) for index in range(len(parts))]
        excluded = False
        for include, regex in rules:
            if any(regex.fullmatch(prefix) for prefix in prefixes):
                excluded = not include
        if not excluded:
            selected.add("/".join(parts))
    return selected
