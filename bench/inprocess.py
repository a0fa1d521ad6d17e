"""CPU per request inside one process: rendered services' ASGI apps called directly.

No sockets, no wrk, no HTTP parsing: each target's app is driven through its
lifespan and called ``--requests`` times for ``GET /healthz``, and the script
prints the CPU time per request of the event-loop thread and of the whole
process (so an export thread counts), with ratios against the first target.
Targets alternate round by round, so drift on a shared machine hits all alike.
Steadier than bench/run.py for comparing two versions of the request path; it
says nothing about throughput under concurrency.

    python bench/inprocess.py --target bare=/tmp/new:bare --target off=/tmp/new:off \\
        --target sdk=/tmp/old:always_on --target lean=/tmp/new:always_on

A target is NAME=PROJECT:SAMPLING, PROJECT a rendered and installed project, and
SAMPLING ``bare`` (bench/bare_app.py with that project's libraries), ``off``
(OTEL_SDK_DISABLED) or an OTEL_TRACES_SAMPLER value. Traced
targets export over OTLP to ``--endpoint`` (start bench/otlp_sink.py there).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

HARNESS = r"""
import asyncio, json, os, re, sys, time
if os.environ.get("BENCH_BARE_APP"):  # bench/bare_app.py, run with the project's libraries
    sys.path.insert(0, os.path.dirname(os.environ["BENCH_BARE_APP"]))
    from bare_app import app as bare
    create_app = lambda: bare
else:
    answers = open(".copier-answers.yml").read()
    package = re.search(r"^package_name: (\S+)$", answers, re.MULTILINE).group(1)
    create_app = __import__(f"{package}.main", fromlist=["create_app"]).create_app
from asgi_lifespan import LifespanManager

SCOPE = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
         "scheme": "http", "path": "/healthz", "raw_path": b"/healthz", "query_string": b"",
         "root_path": "", "headers": [(b"host", b"bench"), (b"user-agent", b"bench")],
         "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80)}

async def receive():
    return {"type": "http.request", "body": b"", "more_body": False}

async def send(message):
    pass

async def main(requests):
    app = create_app()
    sys.stdout = open(os.devnull, "w")  # the access lines
    async with LifespanManager(app):
        for _ in range(requests // 10):
            await app(dict(SCOPE), receive, send)
        thread, process = time.thread_time(), time.process_time()
        for _ in range(requests):
            await app(dict(SCOPE), receive, send)
        thread, process = time.thread_time() - thread, time.process_time() - process
        await asyncio.sleep(0.5)
    return {"thread": thread / requests * 1e6, "process": process / requests * 1e6}

sys.stderr.write(json.dumps(asyncio.run(main(int(sys.argv[1])))) + "\n")
"""


def run_once(
    project: Path, sampling: str, requests: int, endpoint: str, cpu: int
) -> dict[str, float]:
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite+aiosqlite:///{project / 'bench.db'}",
        "OTEL_PYTHON_EXCLUDED_URLS": "",  # trace /healthz
        "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
    }
    if sampling == "bare":
        env["BENCH_BARE_APP"] = str(Path(__file__).with_name("bare_app.py").resolve())
    elif sampling == "off":
        env["OTEL_SDK_DISABLED"] = "true"
    else:
        env["OTEL_TRACES_SAMPLER"] = sampling
    command = ["taskset", "-c", str(cpu), str(project / ".venv/bin/python"), "-c", HARNESS]
    done = subprocess.run(
        [*command, str(requests)], cwd=project, env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"{project} ({sampling}) failed:\n{done.stderr[-2000:]}")
    result: dict[str, float] = json.loads(done.stderr.strip().splitlines()[-1])
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--target", action="append", required=True, metavar="NAME=PROJECT:SAMPLING")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--endpoint", default="http://127.0.0.1:4317")
    parser.add_argument("--cpu", type=int, default=0, help="CPU the harness is pinned to")
    arguments = parser.parse_args()
    targets = []
    for spec in arguments.target:
        name, _, rest = spec.partition("=")
        project, _, sampling = rest.rpartition(":")
        targets.append((name, Path(project).resolve(), sampling))

    samples: dict[str, list[dict[str, float]]] = {name: [] for name, _, _ in targets}
    for round_number in range(1, arguments.rounds + 1):
        for name, project, sampling in targets:
            result = run_once(
                project, sampling, arguments.requests, arguments.endpoint, arguments.cpu
            )
            samples[name].append(result)
            print(
                f"[inprocess] round {round_number}/{arguments.rounds} {name:<12}"
                f" loop thread {result['thread']:6.1f} µs/req"
                f"   process {result['process']:6.1f} µs/req",
                file=sys.stderr,
            )

    baseline = targets[0][0]
    base = {
        key: statistics.median(s[key] for s in samples[baseline]) for key in ("thread", "process")
    }
    print(
        f"\n{'target':<12} {'loop µs/req':>11} {'process µs/req':>14} {'process ÷ ' + baseline:>18}"
    )
    for name, _, _ in targets:
        thread = statistics.median(s["thread"] for s in samples[name])
        process = statistics.median(s["process"] for s in samples[name])
        print(f"{name:<12} {thread:>11.1f} {process:>14.1f} {process / base['process']:>18.3f}")
    print(f"\nmedians over {arguments.rounds} rounds of {arguments.requests} requests each")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
