"""The template's documentation site builds strictly and its questions page matches copier.yml."""

from __future__ import annotations

import html
import re
import sys
from pathlib import Path

from .support.project import TEMPLATE_ROOT, run
from .support.questions import choices, questions, toggles

MKDOCS = str(Path(sys.executable).parent / "mkdocs")


def test_the_site_builds_strictly_and_lists_every_question_and_answer(tmp_path: Path) -> None:
    site = tmp_path / "site"
    run([MKDOCS, "build", "--strict", "--site-dir", str(site)], TEMPLATE_ROOT)
    page = (site / "questions" / "index.html").read_text()
    text = html.unescape(re.sub(r"<[^>]+>", "", page))
    for key in questions():
        assert key in text, key
    for key in toggles():
        for value in choices(key):
            assert value in text, (key, value)
    # What a toggle renders is read from the template tree, not written by hand.
    assert "src/<package_name>/observability/tracing.py" in section(page, "tracing_exporter")
    deploy = section(page, "deploy_target")
    assert "deploy/helm/" in deploy
    assert "deploy/swarm/" in deploy


def section(page: str, key: str) -> str:
    """The text of the questions page's section for ``key``."""
    start = page.index(f'<h3 id="{key}"')
    end = page.find("<h3 ", start + 1)
    return html.unescape(re.sub(r"<[^>]+>", "", page[start : end if end > 0 else None]))


def test_a_broken_link_fails_the_build(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "index.md").write_text("# Home\n\nSee [nowhere](missing.md).\n")
    (tmp_path / "mkdocs.yml").write_text("site_name: t\nstrict: true\n")
    result = run([MKDOCS, "build", "--strict"], tmp_path, check=False)
    assert result.returncode != 0
    assert "missing.md" in result.stdout + result.stderr
