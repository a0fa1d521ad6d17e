"""The rendered runbook: a section for every alert, linked from the alert itself."""

from __future__ import annotations

import re
from pathlib import Path

from .support.prometheus import alert_rules

SLUG = "my-service"


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a Markdown heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_every_alert_links_to_its_runbook_section(default_project: Path) -> None:
    runbook = (default_project / "docs" / "runbook.md").read_text()
    headings = []
    in_code = False
    for line in runbook.splitlines():
        if line.startswith("```"):
            in_code = not in_code
        elif line.startswith("#") and not in_code:
            headings.append(line)
    anchors = {github_anchor(heading.lstrip("#")) for heading in headings}
    for rule in alert_rules(default_project):
        link = rule["annotations"]["runbook"]
        page, _, anchor = link.partition("#")
        assert page == "docs/runbook.md", link
        assert anchor in anchors, f"{rule['alert']}: no section #{anchor} in the runbook"
        assert any(
            heading.startswith("### ") and rule["alert"] in heading.split() for heading in headings
        ), f"{rule['alert']}: no heading names it"
    for setting in (
        "SHUTDOWN_GRACE_SECONDS",
        "JOB_LEASE_SECONDS",
        "JOB_MAX_ATTEMPTS",
        "JOB_CONCURRENCY",
        "WORKERS",
        "/api/v1/jobs?status=failed",
    ):
        assert setting in runbook, setting
    assert f'job="{SLUG}"' in runbook
    assert "{{" not in runbook
