"""An OTLP/gRPC collector stand-in for the benchmark: receives spans, counts them, keeps none.

Run it beside ``bench/run.py`` so traced targets export to a live collector, as in
production (a dead one costs less: the exporter then mostly sleeps in its backoff):

    taskset -c 1 .venv/bin/python bench/otlp_sink.py --port 4317 &
    .venv/bin/python bench/run.py ... --env OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4317

It shares CPU 1 with wrk, never the server's CPU 0. SIGTERM or SIGINT stops it and
prints how many spans arrived.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from tests.support.otlp import OtlpReceiver  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=4317, help="127.0.0.1 port (default 4317)")
    arguments = parser.parse_args()
    receiver = OtlpReceiver("grpc", keep_spans=False)
    receiver.port = arguments.port
    receiver.start()
    print(f"OTLP/gRPC sink on 127.0.0.1:{receiver.port}", flush=True)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    receiver.stop()
    print(f"received {receiver.span_count} spans in {receiver.requests} requests", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
