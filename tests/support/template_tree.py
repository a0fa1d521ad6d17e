"""Which answers can reach a file of template/, read from the templates themselves.

An answer reaches a file through its path (``{% if x %}name.py{% endif %}.jinja``), an
``_exclude`` rule of copier.yml that matches it or a folder above it, or, for a
``.jinja`` file, its content. ``test_render`` uses this to prove that only the
matrix's Python dimensions reach Python files, and only its deployment dimensions
the files `make deploy-check` validates.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path, PurePosixPath

import yaml
from jinja2 import Environment, meta
from pathspec import PathSpec

from .project import TEMPLATE_ROOT

TEMPLATE = TEMPLATE_ROOT / "template"
_TAG = re.compile(r"\{%.*?%\}")


def jinja_names(source: str) -> set[str]:
    """The variables a Jinja source reads (answers, ``_copier_conf``)."""
    return set(meta.find_undeclared_variables(Environment().parse(source)))


def files() -> Iterator[Path]:
    """Every file under template/."""
    return (path for path in TEMPLATE.rglob("*") if path.is_file())


def relative(path: Path) -> str:
    return path.relative_to(TEMPLATE).as_posix()


def plain(relative_path: str) -> str:
    """The path with its ``{% %}`` conditions and ``.jinja`` suffix dropped (the name it
    renders to when chosen; ``{{ }}`` names stay as they are)."""
    return _TAG.sub("", relative_path).removesuffix(".jinja")


@cache
def _exclude_rules() -> tuple[tuple[frozenset[str], PathSpec], ...]:
    """copier.yml's ``_exclude`` rules: the answers each reads, and what it can exclude."""
    loaded = yaml.safe_load((TEMPLATE_ROOT / "copier.yml").read_text())
    rules = []
    for rule in loaded.get("_exclude", []):
        names = frozenset(jinja_names(rule))
        if not names:
            continue  # a fixed pattern: the same in every render
        patterns = [part.strip() for part in _TAG.split(rule) if part.strip()]
        rules.append((names, PathSpec.from_lines("gitignore", patterns)))
    return tuple(rules)


def excluded_by(path: str) -> set[str]:
    """The answers of the ``_exclude`` rules that can exclude ``path`` (a plain path)."""
    return {name for names, spec in _exclude_rules() if spec.match_file(path) for name in names}


def answers_choosing(path: Path, *, folder_only: bool = False) -> set[str]:
    """The answers that decide whether ``path`` is rendered (or, with ``folder_only``,
    whether its folder is)."""
    chosen = PurePosixPath(relative(path))
    if folder_only:
        chosen = chosen.parent
    names = jinja_names(str(chosen))
    for depth in range(1, len(chosen.parts) + 1):
        names |= excluded_by(plain(str(PurePosixPath(*chosen.parts[:depth]))))
    return names


def answers_reaching(path: Path, allowed: frozenset[str]) -> set[str]:
    """The answers outside ``allowed`` that can change ``path``'s text or presence.

    A verbatim file that another answer adds or removes is the same text in every
    render that has it, so only the answers choosing its folder count for it (the
    covering set lints and runs it where it is rendered).
    """
    names = answers_choosing(path)
    if path.name.endswith(".jinja"):
        names |= jinja_names(path.read_text())
    elif names - allowed:
        names = answers_choosing(path, folder_only=True)
    return names - allowed - {"_copier_conf"}
