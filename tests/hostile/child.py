"""Run one mirror in this process and print its figures as one JSON document.

Owns: the command line ``python -m tests.hostile.child ROOT URL [options]``,
used by the hostile tests and ``tests.hostile.figures`` so that peak memory
is the crawl's own (``VmHWM`` of this process, read from /proc at the end).
``crawl_in_child`` is the parent's side: start it, wait, parse the JSON.
Must not touch: anything but ROOT (the mirror writes only there).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import trio

from gophermirror.client import Limits
from gophermirror.crawler import CrawlSettings
from gophermirror.mirror import mirror
from gophermirror.protocol import parse_url


def peak_rss_kib() -> int:
    """This process's peak resident set size in KiB (``VmHWM``)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise RuntimeError("no VmHWM in /proc/self/status")


def main(argv: list[str] | None = None) -> int:
    """Mirror URL into ROOT with small limits; print report, seconds and peak RSS."""
    parser = argparse.ArgumentParser(prog="python -m tests.hostile.child")
    parser.add_argument("root")
    parser.add_argument("url")
    parser.add_argument("--idle", type=float, default=0.5)
    parser.add_argument("--total", type=float, default=2.0)
    parser.add_argument("--max-size", type=int, default=1 << 20)
    parser.add_argument("--max-items", type=int, default=1_000_000)
    parser.add_argument("--retries", type=int, default=0)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args(argv)
    settings = CrawlSettings(
        delay=0.0,
        concurrency=args.concurrency,
        retries=args.retries,
        max_items=args.max_items,
        limits=Limits(
            connect_timeout=2.0,
            idle_timeout=args.idle,
            total_timeout=args.total,
            max_size=args.max_size,
        ),
    )
    before = peak_rss_kib()
    start = time.monotonic()
    report = trio.run(mirror, Path(args.root), [parse_url(args.url)], settings)
    document = report.as_dict()
    document["wall_seconds"] = round(time.monotonic() - start, 3)
    document["peak_rss_kib"] = peak_rss_kib()
    document["start_rss_kib"] = before
    json.dump(document, sys.stdout)
    sys.stdout.write("\n")
    return 0


REPO = Path(__file__).resolve().parents[2]
"""The project root: on PYTHONPATH of the child so ``tests.hostile`` imports."""


async def crawl_in_child(
    root: Path,
    url: str,
    *,
    cwd: Path,
    idle: float = 0.5,
    total: float = 2.0,
    max_size: int = 1 << 20,
    max_items: int = 1_000_000,
    retries: int = 0,
    concurrency: int = 4,
) -> dict[str, Any]:
    """Run ``main`` in a fresh interpreter (working directory ``cwd``); its JSON document."""
    command = [
        sys.executable,
        "-m",
        "tests.hostile.child",
        str(root),
        url,
        f"--idle={idle}",
        f"--total={total}",
        f"--max-size={max_size}",
        f"--max-items={max_items}",
        f"--retries={retries}",
        f"--concurrency={concurrency}",
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = await trio.run_process(
        command, cwd=cwd, env=env, capture_stdout=True, capture_stderr=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"child exited {done.returncode}: {done.stderr.decode()[-2000:]}")
    document: dict[str, Any] = json.loads(done.stdout)
    return document


if __name__ == "__main__":
    sys.exit(main())
