"""mkdocs hook: the questions page is generated from copier.yml, so it cannot drift.

`docs/questions.md` holds the marker below; this hook replaces it with one section
per question: its help, type, choices, default, when it is asked, and which files
of `template/` its answer chooses (by their path or an `_exclude` rule) or changes
(by their content).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

MARKER = "<!-- questions from copier.yml -->"
ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template"


def _template_files() -> list[Path]:
    return sorted(path for path in TEMPLATE.rglob("*") if path.is_file())


def _mentions(text: str, key: str) -> bool:
    """Whether a Jinja expression or statement in ``text`` names ``key``."""
    pattern = re.compile(r"\{[{%][^}]*\b" + re.escape(key) + r"\b[^}]*[}%]\}")
    return bool(pattern.search(text))


def readable(relative: str) -> str:
    """A template path as it renders: conditions dropped, names shown as <answer>."""
    shown = re.sub(r"\{% if [^%]*%\}(.*?)\{% endif %\}", r"\1", relative)
    shown = re.sub(r"\{\{\s*(\w+)\s*\}\}", r"<\1>", shown)
    return shown.removesuffix(".jinja")


def excluded_by(key: str, rules: Sequence[str]) -> list[str]:
    """Folders an ``_exclude`` rule naming ``key`` leaves out for some answers."""
    found: list[str] = []
    for rule in rules:
        if _mentions(rule, key):
            shown = readable(rule).strip("/").replace("/*/", "/<project_slug>/") + "/"
            if shown not in found:
                found.append(shown)
    return found


def chosen_by(key: str, files: list[Path], rules: Sequence[str] = ()) -> list[str]:
    """Rendered paths whose presence the answer to ``key`` decides, folders collapsed."""
    found = excluded_by(key, rules)
    for path in files:
        parts = path.relative_to(TEMPLATE).parts
        deciding = [d for d, part in enumerate(parts) if "{% if" in part and _mentions(part, key)]
        if deciding:
            depth = deciding[-1]
            shown = readable("/".join(parts[: depth + 1]))
            shown += "/" if depth < len(parts) - 1 else ""
            if shown not in found:
                found.append(shown)
    return found


def _code(value: Any) -> str:
    return f"`{value}`" if value not in (None, "") else "—"


def _listing(paths: list[str], limit: int = 12) -> str:
    shown = ", ".join(f"`{path}`" for path in paths[:limit])
    return shown + (f" and {len(paths) - limit} more" if len(paths) > limit else "")


def describe(
    key: str, question: dict[str, Any], files: list[Path], rules: Sequence[str] = ()
) -> str:
    lines = [f"### `{key}`", "", str(question.get("help", "")).strip(), ""]
    lines.append(f"- **type:** {_code(question.get('type', 'str'))}")
    choices = question.get("choices")
    if isinstance(choices, dict):
        shown = ", ".join(f"{_code(value)} ({label})" for label, value in choices.items())
        lines.append(f"- **choices:** {shown}")
    elif isinstance(choices, list):
        lines.append(f"- **choices:** {', '.join(_code(choice) for choice in choices)}")
    lines.append(f"- **default:** {_code(question.get('default'))}")
    if "when" in question:
        lines.append(f"- **asked when:** {_code(question['when'])}")
    if "validator" in question:
        lines.append("- **validated:** a refused answer says what is allowed; nothing is written")
    chosen = chosen_by(key, files, rules)
    changed = [
        readable(str(f.relative_to(TEMPLATE)))
        for f in files
        if f.name.endswith(".jinja") and _mentions(f.read_text(), key)
    ]
    if chosen:
        lines.append(f"- **renders only for some answers:** {_listing(chosen)}")
    if changed:
        lines.append(f"- **changes the content of:** {_listing(changed)}")
    return "\n".join(lines) + "\n"


def questions_markdown(copier_yml: Path = ROOT / "copier.yml") -> str:
    """Every question of ``copier_yml`` in order, as Markdown sections."""
    loaded: dict[str, Any] = yaml.safe_load(copier_yml.read_text())
    files = _template_files()
    return "\n".join(
        describe(key, question, files, loaded.get("_exclude", []))
        for key, question in loaded.items()
        if not key.startswith("_") and isinstance(question, dict)
    )


def on_page_markdown(markdown: str, **_: Any) -> str:
    """mkdocs entry point: fill in the marker where a page has it."""
    if MARKER not in markdown:
        return markdown
    return markdown.replace(MARKER, questions_markdown())
