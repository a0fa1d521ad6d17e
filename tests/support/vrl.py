"""Vector's own VRL compiler and runtime (the vector-vrl wheel), for checking remap programs.

vector-vrl needs Python 3.12 or later and the template's tools run on 3.11, so it
runs in a throwaway uv environment on a pyenv 3.12, pinned here.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from .project import TEMPLATE_ROOT, UV, pyenv_python, run

VECTOR_VRL = "vector-vrl==1.0.7"

_RUNNER = r"""
import json, sys
from vector_vrl import execute_vrl, validate_vrl

request = json.loads(open(sys.argv[1]).read())
compiled = {}
for name, source in request["programs"].items():
    result = validate_vrl(source)
    compiled[name] = None if result.success else str(result.error)
events = [json.dumps(event) for event in request["events"]]
for name in request["chain"]:
    outputs = execute_vrl(request["programs"][name], events)
    events = [json.dumps(event) for event in outputs]
print(json.dumps({"compiled": compiled, "events": [json.loads(e) for e in events]}))
"""


def run_vrl(
    programs: dict[str, str], chain: list[str], events: list[dict[str, Any]]
) -> tuple[dict[str, str | None], list[dict[str, Any]]]:
    """Compile every program (name -> error or None) and run ``events`` through ``chain``."""
    python = pyenv_python("3.12") or pyenv_python("3.13")
    assert python, "vector-vrl needs a Python 3.12 or 3.13 interpreter"
    with tempfile.TemporaryDirectory(prefix="vrl-") as scratch:
        script = Path(scratch, "runner.py")
        script.write_text(_RUNNER)
        request = Path(scratch, "request.json")
        request.write_text(json.dumps({"programs": programs, "chain": chain, "events": events}))
        command = [UV, "run", "--quiet", "--no-project", "--python", python]
        command += ["--with", VECTOR_VRL, "python", str(script), str(request)]
        result = run(command, TEMPLATE_ROOT, timeout=300)
    answer: dict[str, Any] = json.loads(result.stdout)
    return answer["compiled"], answer["events"]
