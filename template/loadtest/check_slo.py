"""Check Locust's CSV statistics against the SLO in slo.toml.

    python loadtest/check_slo.py results/run [--slo loadtest/slo.toml]

``results/run`` is the prefix given to ``locust --csv``; this reads
``results/run_stats.csv``. Prints one line per endpoint the SLO names and one for
the error ratio, then exits 0 when the SLO holds, 1 when it is breached and 2 when
the statistics or the SLO cannot be read.
"""

from __future__ import annotations

import argparse
import csv
import sys
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

DEFAULT_SLO: Final = Path(__file__).with_name("slo.toml")
AGGREGATED: Final = "Aggregated"
EXIT_MET: Final = 0
EXIT_BREACHED: Final = 1
EXIT_UNREADABLE: Final = 2


class InputError(Exception):
    """The statistics or the SLO file cannot be read or make no sense."""


@dataclass(frozen=True, slots=True)
class Slo:
    """Objectives: the largest error ratio, and a p99 latency per endpoint."""

    max_error_ratio: float
    min_requests: int
    p99_ms: dict[str, float]


@dataclass(frozen=True, slots=True)
class Stats:
    """One row of Locust's statistics."""

    requests: int
    failures: int
    p99_ms: float | None


@dataclass(frozen=True, slots=True)
class Check:
    """One objective against what the run measured."""

    subject: str
    measured: str
    objective: str
    met: bool


def load_slo(path: Path) -> Slo:
    """Read and validate the SLO file."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise InputError(f"cannot read the SLO {path}: {error}") from error
    try:
        max_error_ratio = float(data["max_error_ratio"])
        min_requests = int(data.get("min_requests", 1))
        endpoints = data["endpoints"]
        p99_ms = {key: float(objective["p99_ms"]) for key, objective in endpoints.items()}
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise InputError(
            f'{path}: expected max_error_ratio and [endpoints."METHOD name"] tables '
            f"with p99_ms ({error!r})"
        ) from error
    if not 0 <= max_error_ratio <= 1 or min_requests < 1 or not p99_ms:
        raise InputError(
            f"{path}: max_error_ratio must be within 0..1, min_requests at least 1, "
            "and at least one endpoint given"
        )
    return Slo(max_error_ratio=max_error_ratio, min_requests=min_requests, p99_ms=p99_ms)


def _milliseconds(value: str) -> float | None:
    return None if value.strip() in {"", "N/A"} else float(value)


def load_stats(path: Path) -> dict[str, Stats]:
    """Rows of a ``*_stats.csv`` keyed "METHOD name"; the total row is keyed "Aggregated"."""
    try:
        with path.open(newline="", encoding="utf-8") as stream:
            rows = list(csv.DictReader(stream))
    except OSError as error:
        raise InputError(f"cannot read the statistics {path}: {error}") from error
    stats: dict[str, Stats] = {}
    for number, row in enumerate(rows, start=2):
        try:
            method, name = row["Type"].strip(), row["Name"].strip()
            entry = Stats(
                requests=int(row["Request Count"]),
                failures=int(row["Failure Count"]),
                p99_ms=_milliseconds(row["99%"]),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise InputError(f"{path}, line {number}: not Locust statistics ({error!r})") from error
        stats[name if name == AGGREGATED and not method else f"{method} {name}"] = entry
    if AGGREGATED not in stats:
        raise InputError(f"{path}: no {AGGREGATED} row; is this a Locust *_stats.csv file?")
    return stats


def evaluate(slo: Slo, stats: dict[str, Stats]) -> list[Check]:
    """Every objective of ``slo`` checked against ``stats``."""
    checks = []
    for key, limit in slo.p99_ms.items():
        entry = stats.get(key)
        objective = f"p99 <= {limit:g} ms"
        if entry is None or entry.requests < slo.min_requests:
            count = 0 if entry is None else entry.requests
            checks.append(
                Check(
                    key, f"{count} requests", f"{objective}, >= {slo.min_requests} requests", False
                )
            )
        elif entry.p99_ms is None:
            checks.append(Check(key, "no p99", objective, False))
        else:
            checks.append(Check(key, f"p99 {entry.p99_ms:g} ms", objective, entry.p99_ms <= limit))
    total = stats[AGGREGATED]
    ratio = total.failures / total.requests if total.requests else 1.0
    checks.append(
        Check(
            "all requests",
            f"{total.failures}/{total.requests} failed ({ratio:.2%})",
            f"error ratio <= {slo.max_error_ratio:.2%}",
            total.requests > 0 and ratio <= slo.max_error_ratio,
        )
    )
    return checks


def report(checks: Sequence[Check]) -> str:
    """A table of the checks and a verdict line."""
    width = max(len(check.subject) for check in checks)
    lines = [
        f"{'PASS' if check.met else 'FAIL'}  {check.subject:<{width}}  "
        f"{check.measured}  (objective: {check.objective})"
        for check in checks
    ]
    breached = [check.subject for check in checks if not check.met]
    lines.append(
        f"SLO breached: {', '.join(breached)}" if breached else "SLO met by every endpoint"
    )
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the check; the exit status says whether the SLO holds."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("csv_prefix", help="the prefix given to `locust --csv`")
    parser.add_argument("--slo", type=Path, default=DEFAULT_SLO, help="the SLO file (TOML)")
    arguments = parser.parse_args(argv)
    try:
        slo = load_slo(arguments.slo)
        stats = load_stats(Path(f"{arguments.csv_prefix}_stats.csv"))
    except InputError as error:
        sys.stderr.write(f"check_slo: {error}\n")
        return EXIT_UNREADABLE
    checks = evaluate(slo, stats)
    sys.stdout.write(report(checks))
    return EXIT_MET if all(check.met for check in checks) else EXIT_BREACHED


if __name__ == "__main__":
    raise SystemExit(main())
