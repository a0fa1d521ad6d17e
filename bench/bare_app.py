"""Bare FastAPI: the baseline that the service's observability is measured against.

One route, ``GET /healthz``, declared as the service declares it (the same
response model, so the same validation and serialisation; the body is
``{"status":"ok"}``), and no middleware of our own. uvicorn serves it with the
service's server options: uvloop, httptools, one worker, no access log, no
logging configuration, no ``server`` header.

bench/run.py starts it with the rendered project's own interpreter, so both
targets run the same fastapi, starlette, pydantic and uvicorn:

    <project>/.venv/bin/python bench/bare_app.py --port 8001
"""

from __future__ import annotations

import argparse
from typing import Literal

import uvicorn
from fastapi import FastAPI
from pydantic import BaseModel


class Health(BaseModel):
    """Liveness: the process runs."""

    status: Literal["ok"] = "ok"


app = FastAPI(title="bare")


@app.get("/healthz")
async def healthz() -> Health:
    """Liveness: 200 while the process runs."""
    return Health()


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    return parser.parse_args()


def main() -> int:
    """Serve ``app`` until SIGTERM or SIGINT."""
    arguments = _arguments()
    uvicorn.run(
        app,
        host=arguments.host,
        port=arguments.port,
        workers=1,
        loop="uvloop",
        http="httptools",
        log_config=None,
        access_log=False,
        server_header=False,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
