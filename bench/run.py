"""``python -m bench``: run every row in one go, print the table, write results.json.

Owns: the order of the runs, their sizes (``--articles``, ``--quick``,
``--reps``), the scratch directories (``/dev/shm/gophermirror-bench-PID``
for tmpfs, ``bench/work/disk-PID`` for the disk; both removed at the end)
and the progress lines on stderr.  Must not touch: anything outside those
directories, ``bench/work/`` and ``bench/results.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from .hole import big_menu
from .native import BENCH_DIR, WORK_DIR, BenchError, build
from .parsing import measure_parsing
from .report import SMALL, Results, fs_type, machine_info
from .serving import serving_rows
from .throughput import Origin, Runs, curl_runs, mirror_full, mirror_update, trio_runs

CONCURRENCIES = (2, 8)
SERVING_ARTICLES = 1000
PARSE_LINES = 200_000


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Mirror, update, memory, serving and parsing figures against baselines "
        "measured in the same run (docs/benchmarks.md).",
    )
    parser.add_argument(
        "--articles", type=int, default=None, metavar="N",
        help=f"articles in the hole (default {SMALL:,}; 100000 for the large run; --quick: 1000)",
    )  # fmt: skip
    parser.add_argument(
        "--quick", action="store_true", help="a smoke run: 1,000 articles, one run each"
    )
    parser.add_argument(
        "--reps", type=int, default=None, help="runs of each timed command (default 3; --quick: 1)"
    )
    parser.add_argument(
        "--output", type=Path, default=BENCH_DIR / "results.json", help="where to write the figures"
    )
    return parser


class _Log:
    def __init__(self) -> None:
        self.start = time.monotonic()

    def __call__(self, text: str) -> None:
        print(f"[{time.monotonic() - self.start:7.1f}s] {text}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def _scratch(path: Path) -> Iterator[Path]:
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; 0 when every figure was measured (targets may still MISS)."""
    args = _parser().parse_args(argv)
    articles = args.articles or (SERVING_ARTICLES if args.quick else SMALL)
    reps = args.reps or (1 if args.quick else 3)
    serve_requests, serve_seconds = (3000, 3.0) if args.quick else (20_000, 10.0)
    log = _Log()
    results = Results(articles, reps, args.quick, machine_info())
    results.started = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    try:
        origin_bin, load_bin = build("origin"), build("load")
        pid = os.getpid()
        with (
            _scratch(Path("/dev/shm") / f"gophermirror-bench-{pid}") as shm,
            _scratch(WORK_DIR / f"disk-{pid}") as disk,
        ):
            results.fs = {"tmpfs": f"{shm} ({fs_type(shm)})", "disk": f"{disk} ({fs_type(disk)})"}
            _throughput(results, articles, reps, shm, disk, origin_bin, load_bin, log)
            if articles > SMALL:
                log(f"memory and update at {SMALL:,} articles")
                with Origin(SMALL, origin_bin, load_bin) as small:
                    root = shm / "small"
                    results.full_for_update[SMALL] = mirror_full(small, 8, root, "tmpfs", reps, log)
                    results.updates.append(mirror_update(small, 8, root, reps, log))
                    shutil.rmtree(root, ignore_errors=True)
            log(f"serving: {SERVING_ARTICLES:,}-article hole")
            with Origin(SERVING_ARTICLES, origin_bin, load_bin) as origin:
                results.serving, results.serving_notes = serving_rows(
                    origin, requests=serve_requests, seconds=serve_seconds, log=log
                )
                log(f"parsing: a {PARSE_LINES:,}-line menu")
                results.parsing = measure_parsing(
                    big_menu(origin.hole, PARSE_LINES), 1 if args.quick else 5
                )
    except BenchError as exc:
        log(f"bench failed: {exc}")
        return 1
    results.seconds = time.monotonic() - log.start
    print(results.table())
    args.output.write_text(json.dumps(results.as_dict(), indent=2) + "\n")
    log(f"wrote {args.output}")
    return 0


def _throughput(
    results: Results,
    articles: int,
    reps: int,
    shm: Path,
    disk: Path,
    origin_bin: Path,
    load_bin: Path,
    log: _Log,
) -> None:
    log(f"building a hole of {articles:,} articles")
    with Origin(articles, origin_bin, load_bin) as origin:
        hole = origin.hole
        results.hole = {
            "articles": articles,
            "menus": len(hole.menus),
            "documents": len(hole.documents),
            "items": len(hole.items),
            "bytes": hole.item_bytes,
        }
        log(
            f"hole: {len(hole.menus)} menus, {len(hole.documents)} documents, "
            f"{hole.item_bytes / 1e6:.1f} MB"
        )
        for c in CONCURRENCIES:
            log(f"C={c}: origin ceiling, then curl, trio loop, mirror on tmpfs and disk in turn")
            results.ceiling[c] = origin.ceiling(c, seconds=20.0)
            log(f"  C origin ceiling C={c}: {results.ceiling[c].rps:.0f} req/s")
            tmpfs_root, disk_root = shm / f"mirror-c{c}", disk / f"mirror-c{c}"
            # One run of each command per round, so that a burst of other load on
            # the machine falls on all of them alike rather than on one.
            rounds: dict[str, Runs] = {}
            for _ in range(reps):
                for name, runs in _one_round(origin, c, tmpfs_root, disk_root, log).items():
                    rounds[name] = rounds[name].merged(runs) if name in rounds else runs
                shutil.rmtree(disk_root, ignore_errors=True)
            results.curl.append(rounds["curl"])
            results.trio.append(rounds["trio"])
            results.trio_socket.append(rounds["trio-socket"])
            results.mirror += [rounds["tmpfs"], rounds["disk"]]
            if c == 8:
                results.full_for_update[articles] = rounds["tmpfs"]
                results.updates.append(mirror_update(origin, c, tmpfs_root, reps, log))
            shutil.rmtree(tmpfs_root, ignore_errors=True)


def _one_round(
    origin: Origin, c: int, tmpfs_root: Path, disk_root: Path, log: _Log
) -> dict[str, Runs]:
    """One run each of curl, the trio loop, the mirror on tmpfs and on disk, at ``c``."""
    return {
        "curl": curl_runs(origin, c, 1, log),
        "trio": trio_runs(origin, c, 1, log),
        "trio-socket": trio_runs(origin, c, 1, log, raw=True),
        "tmpfs": mirror_full(origin, c, tmpfs_root, "tmpfs", 1, log),
        "disk": mirror_full(origin, c, disk_root, "disk", 1, log),
    }
