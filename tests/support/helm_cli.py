"""`helm lint` and `helm template` through Helm's engine in-process (helm-python-sdk).

There is no helm binary to be had here; this stands in for the two commands the
generated Makefile's `deploy-check` runs: `lint [--strict] CHART` and
`template NAME CHART`. Exits 1 on any finding of warning level or worse. It is run
as a script, and renders and lints through ``helm_chart.py`` like the tests do.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script: import the helpers as the tests do, from the template repository,
# and keep this folder off the path (its compose.py and kafka.py would shadow packages).
_HERE = Path(__file__).resolve().parent
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parents[1]))

from tests.support.helm_chart import lint_problems, render_files  # noqa: E402


def main(arguments: list[str]) -> int:
    command, *rest = arguments
    if command == "lint":
        strict = "--strict" in rest
        (chart,) = [argument for argument in rest if argument != "--strict"]
        problems = lint_problems(Path(chart), strict=strict, kube_version=None)
        for problem in problems:
            print(problem)
        return 1 if problems else 0
    if command == "template":
        name, chart = rest
        rendered = render_files(Path(chart), name=name, namespace="default")
        print("\n---\n".join(text for _, text in sorted(rendered.items())))
        return 0
    print(f"unsupported: helm {command}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
