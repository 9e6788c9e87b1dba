"""Rows 1 to 3: full mirror, update run and memory, against curl and a bare trio loop.

Owns: ``Origin`` (a synthetic hole served by the C origin, with the files
the fetchers read), the timed runs of the mirror CLI, of ``curl`` through
``xargs -P C -n 20`` and of ``bench.trio_loop`` on the same selectors, the
origin's own ceiling (the load client at the same C), and the checks that
every run asked the origin for exactly what it should (the origin's request
counters).  Must not touch: the product's modules (the mirror runs as its
CLI in a subprocess), any address but 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Self

import attrs

from tests.peers import free_port

from .hole import Hole, build_hole, write_selectors, write_targets, write_urls
from .measure import Measured, median, python_with_peak_probe, run_measured
from .native import BENCH_DIR, WORK_DIR, BenchError, COrigin, LoadResult, OriginStats, run_load

REPO = BENCH_DIR.parent
"""The source tree (``python -m bench.trio_loop`` runs from here)."""
HOST_FILES = (b"robots.txt", b"caps.txt")
"""What a mirror may ask for besides the hole's items (once per host and run)."""
MB = 1_000_000

Log = Callable[[str], None]


@attrs.frozen
class Runs:
    """Repeated timed runs of one fetcher over the whole hole."""

    tool: str
    """``mirror``, ``curl`` or ``trio``."""
    concurrency: int
    fs: str | None
    """``tmpfs`` or ``disk`` for the mirror; ``None`` for the baselines."""
    walls: tuple[float, ...]
    """Seconds per run, spawn to exit."""
    items: int
    """Items fetched per run."""
    bytes: int
    """Reply bytes per run."""
    requests: int
    """Requests the origin counted in the last run."""
    peak_rss_kb: int = 0
    """Peak RSS of the process over the runs (the mirror's)."""
    crawl_seconds: tuple[float, ...] = ()
    """The mirror's own count of its crawl time, per run."""

    @property
    def wall(self) -> float:
        """The median run's seconds."""
        return median(self.walls)

    @property
    def items_per_s(self) -> float:
        """Items per second of the median run."""
        return self.items / self.wall

    @property
    def mb_per_s(self) -> float:
        """Megabytes (10^6) per second of the median run."""
        return self.bytes / MB / self.wall

    def merged(self, later: Runs) -> Runs:
        """These runs and ``later`` ones of the same command, as one set."""
        return attrs.evolve(
            self,
            walls=self.walls + later.walls,
            requests=later.requests,
            peak_rss_kb=max(self.peak_rss_kb, later.peak_rss_kb),
            crawl_seconds=self.crawl_seconds + later.crawl_seconds,
        )

    def as_dict(self) -> dict[str, object]:
        """A JSON-ready summary."""
        return {
            "tool": self.tool,
            "concurrency": self.concurrency,
            "fs": self.fs,
            "walls_s": [round(w, 4) for w in self.walls],
            "wall_s": round(self.wall, 4),
            "items": self.items,
            "bytes": self.bytes,
            "requests": self.requests,
            "items_per_s": round(self.items_per_s, 1),
            "mb_per_s": round(self.mb_per_s, 2),
            "peak_rss_kb": self.peak_rss_kb,
            "crawl_s": [round(s, 4) for s in self.crawl_seconds],
        }


@attrs.frozen
class UpdateRuns:
    """Mirror runs over a store that already holds the unchanged hole."""

    articles: int
    walls: tuple[float, ...]
    requests: int
    """Requests the origin counted (last run)."""
    menus_fetched: int
    """How many of the hole's menus were asked for (last run)."""
    menus: int
    """How many menus the hole has."""
    host_files: int
    """robots.txt and caps.txt requests."""
    documents_fetched: int
    """Documents (articles, about.txt) asked for: must be 0."""
    others: int
    """Anything else asked for (must be 0)."""
    peak_rss_kb: int

    @property
    def wall(self) -> float:
        """The median run's seconds."""
        return median(self.walls)

    @property
    def only_menus(self) -> bool:
        """Every menu once, robots/caps at most once each, nothing else."""
        return (
            self.menus_fetched == self.menus
            and self.documents_fetched == 0
            and self.others == 0
            and self.host_files <= len(HOST_FILES)
            and self.requests == self.menus + self.host_files
        )

    def as_dict(self) -> dict[str, object]:
        """A JSON-ready summary."""
        return {
            "articles": self.articles,
            "walls_s": [round(w, 4) for w in self.walls],
            "wall_s": round(self.wall, 4),
            "requests": self.requests,
            "menus_fetched": self.menus_fetched,
            "menus": self.menus,
            "host_files": self.host_files,
            "documents_fetched": self.documents_fetched,
            "others": self.others,
            "only_menus": self.only_menus,
            "peak_rss_kb": self.peak_rss_kb,
        }


@attrs.define(eq=False)
class Origin:
    """A hole of ``articles`` articles served by the C origin, with its input files."""

    articles: int
    origin_bin: Path
    load_bin: Path
    work: Path = WORK_DIR
    hole: Hole = attrs.field(init=False)
    server: COrigin = attrs.field(init=False)
    urls: Path = attrs.field(init=False)
    selectors: Path = attrs.field(init=False)
    targets: Path = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        port = free_port()
        self.hole = build_hole(self.articles, port)
        stem = self.work / f"hole-{self.articles}"
        hole_file = self.hole.write_origin_file(stem.with_suffix(".origin"))
        items = self.hole.items
        self.urls = write_urls(stem.with_suffix(".urls"), self.hole, items)
        self.selectors = write_selectors(stem.with_suffix(".selectors"), items)
        self.targets = write_targets(
            stem.with_suffix(".targets"), ((s, self.hole.replies[s]) for s in items)
        )
        self.server = COrigin(self.origin_bin, hole_file, port)

    @property
    def port(self) -> int:
        """The origin's port."""
        return self.server.port

    def __enter__(self) -> Self:
        self.server.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.server.stop()
        for path in (self.server.hole_file, self.urls, self.selectors, self.targets):
            path.unlink(missing_ok=True)

    def ceiling(self, connections: int, seconds: float) -> LoadResult:
        """The origin's own rate with the load client at ``connections``, on the hole's items."""
        requests = max(len(self.hole.items), 20_000)
        self.server.reset()
        result = run_load(
            self.load_bin,
            self.port,
            self.targets,
            requests=requests,
            connections=connections,
            seconds=seconds,
        )
        if result.failed:
            raise BenchError(f"the C origin failed {result.failed} requests:\n{result.errors}")
        return result

    def counted(self) -> OriginStats:
        """The origin's counters (then reset)."""
        stats = self.server.stats()
        self.server.reset()
        return stats

    def check_full(self, stats: OriginStats, who: str, *, host_files: bool) -> None:
        """Every item asked for exactly once (and robots/caps at most once each)."""
        items = self.hole.items
        wrong = [s for s in items if stats.hits.get(s) != 1]
        extra = set(stats.hits) - set(items) - (set(HOST_FILES) if host_files else set())
        if wrong or extra or stats.missing:
            raise BenchError(
                f"{who} did not fetch each item once: {len(wrong)} items wrong "
                f"(e.g. {wrong[:3]}), extra {sorted(extra)[:5]}, missing {stats.missing}"
            )


def mirror_args(url: str, root: Path, concurrency: int) -> list[str]:
    """The mirror command's arguments: ``--delay 0``, ``concurrency`` connections, JSON summary."""
    return [
        "mirror", url, "--root", str(root), "--delay", "0",
        "--concurrency", str(concurrency), "--quiet", "--json",
    ]  # fmt: skip


def run_mirror(origin: Origin, root: Path, concurrency: int) -> Measured:
    """One ``python -m gophermirror mirror`` of the hole into ``root``, timed, with its peak RSS."""
    peak_file = origin.work / f"peak-{os.getpid()}.kb"
    argv = python_with_peak_probe(
        "gophermirror", mirror_args(origin.hole.url(), root, concurrency), peak_file
    )
    return run_measured(argv, cwd=origin.work, timeout=3600, peak_file=peak_file)


def _check_mirror(done: Measured, expected_items: int) -> dict[str, object]:
    if done.returncode != 0:
        raise BenchError(
            f"mirror exited {done.returncode}: {done.stderr.decode('utf-8', 'replace')[-2000:]}"
        )
    report: dict[str, object] = json.loads(done.stdout)
    items = report["items"]
    assert isinstance(items, dict)
    stored = sum(int(items[k]) for k in ("new", "changed", "unchanged"))
    if not report["ok"] or stored != expected_items:
        raise BenchError(f"mirror stored {stored} of {expected_items} items: {report}")
    return report


def mirror_full(origin: Origin, concurrency: int, root: Path, fs: str, reps: int, log: Log) -> Runs:
    """``reps`` full mirrors of the hole into a fresh ``root`` each; the last one is kept."""
    hole = origin.hole
    walls: list[float] = []
    crawl: list[float] = []
    rss = 0
    stats: OriginStats | None = None
    for rep in range(reps):
        shutil.rmtree(root, ignore_errors=True)
        origin.server.reset()
        done = run_mirror(origin, root, concurrency)
        report = _check_mirror(done, len(hole.items))
        stats = origin.counted()
        origin.check_full(stats, "the mirror", host_files=True)
        walls.append(done.wall)
        seconds = report["seconds"]
        assert isinstance(seconds, float | int)
        crawl.append(float(seconds))
        rss = max(rss, done.peak_rss_kb)
        log(
            f"  mirror C={concurrency} {fs} run {rep + 1}/{reps}: {done.wall:.2f} s, "
            f"{len(hole.items) / done.wall:.0f} items/s, peak RSS {done.peak_rss_kb / 1024:.0f} MiB"
        )
    assert stats is not None
    return Runs(
        "mirror", concurrency, fs, tuple(walls), len(hole.items), hole.item_bytes,
        stats.requests, rss, tuple(crawl),
    )  # fmt: skip


def mirror_update(origin: Origin, concurrency: int, root: Path, reps: int, log: Log) -> UpdateRuns:
    """Mirror again into ``root``, which holds the whole unchanged hole already."""
    hole = origin.hole
    walls: list[float] = []
    rss = 0
    stats: OriginStats | None = None
    for rep in range(reps):
        origin.server.reset()
        done = run_mirror(origin, root, concurrency)
        _check_mirror(done, len(hole.items))
        stats = origin.counted()
        walls.append(done.wall)
        rss = max(rss, done.peak_rss_kb)
        log(
            f"  update C={concurrency} run {rep + 1}/{reps}: {done.wall:.2f} s, "
            f"{stats.requests} requests"
        )
    assert stats is not None
    menus = set(hole.menus)
    documents = set(hole.documents)
    return UpdateRuns(
        articles=hole.articles,
        walls=tuple(walls),
        requests=stats.requests,
        menus_fetched=sum(1 for s, n in stats.hits.items() if s in menus and n == 1),
        menus=len(menus),
        host_files=sum(stats.hits.get(s, 0) for s in HOST_FILES),
        documents_fetched=sum(n for s, n in stats.hits.items() if s in documents),
        others=stats.missing
        + sum(n for s, n in stats.hits.items() if s not in menus | documents | set(HOST_FILES))
        + sum(n - 1 for s, n in stats.hits.items() if s in menus and n > 1),
        peak_rss_kb=rss,
    )


def curl_runs(origin: Origin, concurrency: int, reps: int, log: Log) -> Runs:
    """``xargs -P C -n 20 curl -s`` over every item's URL, replies discarded."""
    if shutil.which("curl") is None:
        raise BenchError("curl is not installed (apt-get install -y curl)")
    argv = ["xargs", "-P", str(concurrency), "-n", "20", "curl", "-s"]
    return _baseline_runs(
        origin, "curl", concurrency, reps, log, argv, origin.urls, cwd=origin.work
    )


def trio_runs(origin: Origin, concurrency: int, reps: int, log: Log, *, raw: bool = False) -> Runs:
    """The bare trio loop (``bench.trio_loop``, ``--raw``: on trio.socket) over every selector."""
    argv = [
        sys.executable, "-m", "bench.trio_loop", "--port", str(origin.port),
        "--concurrency", str(concurrency), "--selectors", str(origin.selectors),
    ]  # fmt: skip
    tool = "trio-socket" if raw else "trio"
    return _baseline_runs(
        origin, tool, concurrency, reps, log, [*argv, "--raw"] if raw else argv, None, cwd=REPO
    )


def _baseline_runs(
    origin: Origin,
    tool: str,
    concurrency: int,
    reps: int,
    log: Log,
    argv: list[str],
    stdin: Path | None,
    *,
    cwd: Path,
) -> Runs:
    hole = origin.hole
    walls: list[float] = []
    stats: OriginStats | None = None
    for rep in range(reps):
        origin.server.reset()
        done = run_measured(argv, cwd=cwd, timeout=3600, stdin=stdin, keep_stdout=tool != "curl")
        if done.returncode != 0:
            raise BenchError(f"{tool} exited {done.returncode}: {done.stderr[-2000:]!r}")
        stats = origin.counted()
        origin.check_full(stats, tool, host_files=False)
        walls.append(done.wall)
        log(
            f"  {tool} C={concurrency} run {rep + 1}/{reps}: {done.wall:.2f} s, "
            f"{len(hole.items) / done.wall:.0f} items/s"
        )
    assert stats is not None
    return Runs(
        tool, concurrency, None, tuple(walls), len(hole.items), hole.item_bytes, stats.requests
    )
