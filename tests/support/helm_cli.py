"""`helm lint` and `helm template` through Helm's engine in-process (helm-python-sdk).

There is no helm binary to be had here; this stands in for the two commands the
generated Makefile's `deploy-check` runs: `lint [--strict] CHART` and
`template NAME CHART`. Exits 1 on any finding of warning level or worse.
"""

from __future__ import annotations

import sys
from pathlib import Path

import helm_python as helm


def main(arguments: list[str]) -> int:
    command, *rest = arguments
    if command == "lint":
        strict = "--strict" in rest
        (chart,) = [argument for argument in rest if argument != "--strict"]
        report = helm.lint(Path(chart), None, strict=strict)
        problems = [m for m in report["messages"] if m["severity"] >= 2] + report["errors"]
        for problem in problems:
            print(problem)
        return 1 if problems or report["total_charts_linted"] != 1 else 0
    if command == "template":
        name, chart = rest
        rendered = helm.Chart.load(Path(chart)).render(
            None, name=name, namespace="default", is_install=True
        )
        print("\n---\n".join(text for _, text in sorted(rendered.items())))
        return 0
    print(f"unsupported: helm {command}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
