"""Measure the mirror against each hostile case; print the table of docs/reliability.md.

Owns: ``python -m tests.hostile.figures [--runs N]``: for each case (and for
the normal part alone, and for every case at once) it serves the hostile
origin on loopback, mirrors it in a child process with the limits the tests
use, and prints one Markdown row: seconds, peak RSS, what was recorded.
Must not touch: anything but a temporary directory it removes.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

import trio

from tests.hostile.child import crawl_in_child
from tests.hostile.origin import ALL_AT_ONCE, Case, HostileOrigin, serve_origin

MiB = 1 << 20
IDLE, TOTAL = 0.5, 2.0

RUNS: list[tuple[str, frozenset[Case], dict[str, Any]]] = [
    ("normal part only", frozenset(), {}),
    *((case.value, frozenset({case}), {}) for case in Case),
    ("all at once, retries=1", ALL_AT_ONCE, {"retries": 1, "max_items": 1000}),
]
OPTIONS: dict[str, dict[str, Any]] = {
    Case.HUGE_MENU.value: {"max_size": 16 * MiB},
    Case.TRAP.value: {"max_items": 300},
    "all at once, retries=1": {"max_size": 16 * MiB},
}


async def measure(name: str, cases: frozenset[Case], options: dict[str, Any]) -> dict[str, Any]:
    """Mirror the origin with ``cases`` once; the child's JSON document."""
    options = {**options, **OPTIONS.get(name, {})}
    max_size = options.get("max_size", MiB)
    with tempfile.TemporaryDirectory(prefix="gm-figures-") as tmp:
        base = Path(tmp)
        (base / "cwd").mkdir()
        origin = HostileOrigin(
            cases=cases,
            outside=str(base / "outside"),
            loris_interval=IDLE / 2,
            oversize=max_size + 1,
        )
        async with trio.open_nursery() as nursery:
            port = await nursery.start(serve_origin, origin)
            report = await crawl_in_child(
                base / "m",
                f"gopher://127.0.0.1:{port}/1",
                cwd=base / "cwd",
                idle=IDLE,
                total=TOTAL,
                **options,
            )
            nursery.cancel_scope.cancel()
    report["origin_requests"] = len(origin.requests)
    return report


def recorded(report: dict[str, Any]) -> str:
    """What the report says went wrong, briefly."""
    kinds: dict[str, int] = {}
    for error in report["errors"]:
        kinds[error["error"]] = kinds.get(error["error"], 0) + 1
    parts = [f"{n} {kind}" if n > 1 else kind for kind, n in sorted(kinds.items())]
    if report["bad_lines"]:
        n = report["bad_lines"]
        parts.append(f"{n} bad menu line{'s' if n > 1 else ''}")
    other = len(report["warnings"]) - min(report["bad_lines"], len(report["warnings"]))
    if other:
        parts.append(f"{other} host-file warning{'s' if other > 1 else ''}")
    if report["truncated"]:
        parts.append("truncated at max_items")
    if report["skipped_robots"]:
        parts.append(f"{report['skipped_robots']} skipped by robots.txt")
    return ", ".join(parts) or "nothing (all stored)"


async def main_async(runs: int) -> None:
    print(f"Python {platform.python_version()}, {platform.machine()}, loopback; ", end="")
    print(f"idle_timeout {IDLE} s, total_timeout {TOTAL} s, max_size 1 MiB unless noted; ", end="")
    print(f"median of {runs} run(s).\n")
    print("| case | seconds | peak RSS (MiB) | stored | requests | recorded |")
    print("|---|---:|---:|---:|---:|---|")
    for name, cases, options in RUNS:
        reports = [await measure(name, cases, options) for _ in range(runs)]
        seconds = statistics.median(r["wall_seconds"] for r in reports)
        peak = statistics.median(r["peak_rss_kib"] for r in reports) / 1024
        last = reports[-1]
        stored = last["items"]["new"]
        note = ", ".join(f"{k}={v}" for k, v in {**options, **OPTIONS.get(name, {})}.items())
        label = f"{name} ({note})" if note and "all at once" not in name else name
        print(
            f"| {label} | {seconds:.2f} | {peak:.0f} | {stored} | {last['requests']} "
            f"| {recorded(last)} |"
        )
        sys.stdout.flush()


def main() -> None:
    """Print the table."""
    parser = argparse.ArgumentParser(prog="python -m tests.hostile.figures")
    parser.add_argument("--runs", type=int, default=3, help="runs per case (median reported)")
    args = parser.parse_args()
    trio.run(main_async, args.runs)


if __name__ == "__main__":
    main()
