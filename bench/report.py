"""The benchmark's output: the machine, the targets (PASS/MISS), the table, results.json.

Owns: ``Results`` (every figure of one run), ``machine_info``, the targets
of issue 9 evaluated on one run's figures, and the plain-text table.  Must
not touch: measuring (the other modules do it); it only reads figures.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

import attrs

from .measure import ratio
from .native import LoadResult
from .parsing import ParseFigures
from .serving import ServerRow
from .throughput import Runs, UpdateRuns

MB = 1_000_000
UPDATE_SHARE_LIMIT = 0.05
RSS_LIMIT_MB = 100.0
RSS_GROWTH_LIMIT = 1.3
LARGE = 100_000
SMALL = 10_000


def _first_line(argv: list[str]) -> str:
    if shutil.which(argv[0]) is None:
        return "not installed"
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    text = (done.stdout or done.stderr).strip()
    return text.splitlines()[0] if text else "unknown"


def fs_type(path: Path) -> str:
    """The file system type of the mount that holds ``path`` (from /proc/self/mounts)."""
    path = path.resolve()
    best, kind = "", "unknown"
    try:
        lines = Path("/proc/self/mounts").read_text().splitlines()
    except OSError:
        return kind
    for line in lines:
        fields = line.split()
        if len(fields) < 3:
            continue
        mount = fields[1].replace("\\040", " ")
        inside = str(path) == mount or str(path).startswith(mount.rstrip("/") + "/")
        if inside and len(mount) >= len(best):
            best, kind = mount, fields[2]
    return kind


def machine_info() -> dict[str, object]:
    """What the figures were measured on."""
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory_kb = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory_kb = int(line.split()[1])
    except OSError:
        pass
    import sqlite3

    import trio

    return {
        "nproc": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)),
        "cpu_model": model,
        "memory_gib": round(memory_kb / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": sys.version.split()[0],
        "python_implementation": platform.python_implementation(),
        "trio": trio.__version__,
        "sqlite": sqlite3.sqlite_version,
        "gcc": _first_line(["gcc", "--version"]),
        "curl": _first_line(["curl", "--version"]),
    }


@attrs.frozen
class Target:
    """One goal of issue 9 and whether this run met it."""

    name: str
    measured: str
    goal: str
    passed: bool | None
    """``None`` when this run did not measure it."""

    @property
    def verdict(self) -> str:
        """PASS, MISS or n/a."""
        return "n/a" if self.passed is None else ("PASS" if self.passed else "MISS")

    def as_dict(self) -> dict[str, object]:
        """A JSON-ready copy."""
        return {**attrs.asdict(self), "verdict": self.verdict}


@attrs.define(eq=False)
class Results:
    """Every figure of one benchmark run."""

    articles: int
    reps: int
    quick: bool
    machine: dict[str, object]
    hole: dict[str, int] = attrs.field(factory=dict)
    fs: dict[str, str] = attrs.field(factory=dict)
    """``tmpfs`` / ``disk`` -> the directory used and its file system type."""
    mirror: list[Runs] = attrs.field(factory=list)
    curl: list[Runs] = attrs.field(factory=list)
    trio: list[Runs] = attrs.field(factory=list)
    trio_socket: list[Runs] = attrs.field(factory=list)
    """The trio loop on bare ``trio.socket`` calls: a floor, no target."""
    ceiling: dict[int, LoadResult] = attrs.field(factory=dict)
    """Concurrency -> the C origin's own rate with the load client."""
    updates: list[UpdateRuns] = attrs.field(factory=list)
    full_for_update: dict[int, Runs] = attrs.field(factory=dict)
    """Articles -> the full tmpfs run at C=8 the update run is compared with."""
    serving: list[ServerRow] = attrs.field(factory=list)
    serving_notes: dict[str, object] = attrs.field(factory=dict)
    parsing: ParseFigures | None = None
    seconds: float = 0.0
    started: str = ""

    # -- lookups -------------------------------------------------------------

    def runs(self, tool: str, concurrency: int, fs: str | None = None) -> Runs | None:
        """The runs of one tool at one concurrency (and file system for the mirror)."""
        pool = {
            "mirror": self.mirror,
            "curl": self.curl,
            "trio": self.trio,
            "trio-socket": self.trio_socket,
        }[tool]
        for runs in pool:
            if runs.concurrency == concurrency and runs.fs == fs:
                return runs
        return None

    def server(self, name: str, connections: int) -> ServerRow | None:
        """One serving row."""
        for row in self.serving:
            if row.server == name and row.connections == connections:
                return row
        return None

    def update(self, articles: int) -> UpdateRuns | None:
        """The update run at ``articles``."""
        for runs in self.updates:
            if runs.articles == articles:
                return runs
        return None

    # -- targets -------------------------------------------------------------

    def targets(self) -> list[Target]:
        """Issue 9's goals, each with what this run measured."""
        out: list[Target] = []
        for c in (2, 8):
            mirror = self.runs("mirror", c, "tmpfs")
            curl = self.runs("curl", c)
            trio = self.runs("trio", c)
            if mirror and curl:
                r = ratio(mirror.items_per_s, curl.items_per_s)
                out.append(Target(f"mirror tmpfs C={c} vs curl", f"{r:.2f}x", ">= 1.0x", r >= 1.0))
            if mirror and trio:
                r = ratio(mirror.items_per_s, trio.items_per_s)
                out.append(
                    Target(f"mirror tmpfs C={c} vs trio loop", f"{r:.2f}x", ">= 0.7x", r >= 0.7)
                )
            ceiling = self.ceiling.get(c)
            if mirror and ceiling:
                r = ratio(ceiling.rps, mirror.items_per_s)
                out.append(
                    Target(
                        f"C origin ceiling C={c} vs mirror", f"{r:.1f}x", ">= 2x (check)", r >= 2.0
                    )
                )
        for runs in self.updates:
            out.append(
                Target(
                    f"update {runs.articles:,}: requests = every menu + robots/caps",
                    f"{runs.requests} = {runs.menus_fetched}+{runs.host_files}, "
                    f"{runs.documents_fetched + runs.others} other",
                    "menus only",
                    runs.only_menus,
                )
            )
        large = self.update(LARGE)
        full = self.full_for_update.get(LARGE)
        if large and full:
            share = ratio(large.wall, full.wall)
            out.append(
                Target(
                    "update 100,000: share of full run",
                    f"{share:.1%}",
                    "< 5%",
                    share < UPDATE_SHARE_LIMIT,
                )
            )
        else:
            out.append(Target("update 100,000: share of full run", "not run", "< 5%", None))
        big = self.full_for_update.get(LARGE)
        small = self.full_for_update.get(SMALL)
        if big:
            mb = big.peak_rss_kb / 1024
            out.append(
                Target("peak RSS at 100,000", f"{mb:.0f} MiB", "< 100 MB", mb < RSS_LIMIT_MB)
            )
        else:
            out.append(Target("peak RSS at 100,000", "not run", "< 100 MB", None))
        if big and small:
            r = ratio(big.peak_rss_kb, small.peak_rss_kb)
            out.append(
                Target("peak RSS 100,000 / 10,000", f"{r:.2f}x", "< 1.3x", r < RSS_GROWTH_LIMIT)
            )
        else:
            out.append(Target("peak RSS 100,000 / 10,000", "not run", "< 1.3x", None))
        ours = self.server("gophermirror", 50)
        nicus = self.server("gophernicus", 50)
        origin = self.server("C origin", 50)
        if ours and nicus:
            r = ratio(ours.load.rps, nicus.load.rps)
            out.append(Target("serve 50 conns vs gophernicus", f"{r:.0f}x", ">= 50x", r >= 50))
        if ours and origin:
            r = ratio(ours.load.rps, origin.load.rps)
            out.append(Target("serve 50 conns vs C origin", f"{r:.2f}x", ">= 0.4x", r >= 0.4))
        if ours:
            out.append(
                Target(
                    "serve 50 conns p99",
                    f"{ours.load.p99_ms:.2f} ms",
                    "< 20 ms",
                    ours.load.p99_ms < 20,
                )
            )
            out.append(
                Target(
                    "serve 50 conns failed requests",
                    str(ours.load.failed),
                    "0",
                    ours.load.failed == 0,
                )
            )
        one = self.server("gophermirror", 1)
        if one:
            out.append(
                Target(
                    "serve 1 conn p99", f"{one.load.p99_ms:.2f} ms", "< 2 ms", one.load.p99_ms < 2
                )
            )
        if self.parsing:
            r = self.parsing.ratio
            out.append(Target("parse_menu vs split loop", f"{r:.2f}x", ">= 0.5x", r >= 0.5))
        return out

    # -- output --------------------------------------------------------------

    def as_dict(self) -> dict[str, object]:
        """Every figure, JSON-ready."""
        return {
            "started": self.started,
            "seconds": round(self.seconds, 1),
            "articles": self.articles,
            "reps": self.reps,
            "quick": self.quick,
            "machine": self.machine,
            "hole": self.hole,
            "fs": self.fs,
            "mirror": [r.as_dict() | self._ratios(r) for r in self.mirror],
            "curl": [r.as_dict() for r in self.curl],
            "trio_loop": [r.as_dict() for r in self.trio],
            "trio_socket_loop": [r.as_dict() for r in self.trio_socket],
            "origin_ceiling": {str(c): r.as_dict() for c, r in self.ceiling.items()},
            "update": [
                u.as_dict()
                | {"full_wall_s": round(self.full_for_update[u.articles].wall, 4)}
                | {"share_of_full": round(ratio(u.wall, self.full_for_update[u.articles].wall), 4)}
                for u in self.updates
                if u.articles in self.full_for_update
            ],
            "memory": [
                {
                    "articles": n,
                    "peak_rss_kb": r.peak_rss_kb,
                    "peak_rss_mib": round(r.peak_rss_kb / 1024, 1),
                }
                for n, r in sorted(self.full_for_update.items())
            ],
            "serving": [row.as_dict() for row in self.serving],
            "serving_walks": self.serving_notes,
            "parsing": self.parsing.as_dict() if self.parsing else None,
            "targets": [t.as_dict() for t in self.targets()],
        }

    def _ratios(self, runs: Runs) -> dict[str, object]:
        curl = self.runs("curl", runs.concurrency)
        trio = self.runs("trio", runs.concurrency)
        sock = self.runs("trio-socket", runs.concurrency)
        return {
            "vs_curl": round(ratio(runs.items_per_s, curl.items_per_s), 3) if curl else None,
            "vs_trio_loop": round(ratio(runs.items_per_s, trio.items_per_s), 3) if trio else None,
            "vs_trio_socket_loop": (
                round(ratio(runs.items_per_s, sock.items_per_s), 3) if sock else None
            ),
        }

    def table(self) -> str:
        """The plain-text table: every row, then the targets."""
        m = self.machine
        hole = self.hole
        lines = [
            f"gophermirror benchmark: {self.articles:,} articles "
            f"({hole.get('items', 0):,} items, {hole.get('bytes', 0) / MB:.1f} MB), "
            f"{self.reps} run(s) each, median shown; {self.started}, {self.seconds:.0f} s in all",
            f"machine: {m['cpu_model']} x{m['nproc']}, {m['memory_gib']} GiB, Linux {m['kernel']}, "
            f"Python {m['python']}, trio {m['trio']}, SQLite {m['sqlite']}",
            f"tmpfs: {self.fs.get('tmpfs', '?')}   disk: {self.fs.get('disk', '?')}",
            "",
            "1. Full mirror, --delay 0 (wall time of the whole command)",
            f"   {'':34}{'items/s':>9}{'MB/s':>8}{'wall s':>8}"
            f"{'vs curl':>9}{'vs trio':>9}{'vs sock':>9}{'RSS MiB':>9}",
        ]
        for c in (2, 8):
            for fs in ("tmpfs", "disk"):
                r = self.runs("mirror", c, fs)
                if r is None:
                    continue
                ratios = self._ratios(r)
                lines.append(
                    f"   {f'gophermirror C={c} {fs}':34}{r.items_per_s:9.0f}{r.mb_per_s:8.1f}"
                    f"{r.wall:8.2f}{_x(ratios['vs_curl']):>9}{_x(ratios['vs_trio_loop']):>9}"
                    f"{_x(ratios['vs_trio_socket_loop']):>9}{r.peak_rss_kb / 1024:9.0f}"
                )
            for tool, label in (
                ("curl", f"curl, xargs -P {c} -n 20"),
                ("trio", f"bare trio loop C={c}"),
                ("trio-socket", f"trio.socket loop C={c} (floor)"),
            ):
                r = self.runs(tool, c)
                if r is not None:
                    lines.append(f"   {label:34}{r.items_per_s:9.0f}{r.mb_per_s:8.1f}{r.wall:8.2f}")
            ceiling = self.ceiling.get(c)
            if ceiling is not None:
                lines.append(
                    f"   {f'C origin ceiling, load client C={c}':34}{ceiling.rps:9.0f}"
                    f"{ceiling.bytes / MB / ceiling.seconds:8.1f}{ceiling.seconds:8.2f}"
                )
        lines += [
            "",
            "2. Update run on the unchanged hole (C=8, tmpfs), requests counted by the origin",
            f"   {'articles':>10}{'requests':>10}{'menus':>12}{'robots/caps':>13}{'docs':>6}"
            f"{'wall s':>8}{'full s':>8}{'share':>8}",
        ]
        for u in self.updates:
            full = self.full_for_update.get(u.articles)
            share = f"{ratio(u.wall, full.wall):.1%}" if full else "-"
            lines.append(
                f"   {u.articles:>10,}{u.requests:>10}{f'{u.menus_fetched}/{u.menus}':>12}"
                f"{u.host_files:>13}{u.documents_fetched:>6}{u.wall:8.2f}"
                f"{(full.wall if full else 0):8.2f}{share:>8}"
            )
        lines += ["", "3. Memory: peak RSS of the mirror process (full run, C=8, tmpfs)"]
        for n, r in sorted(self.full_for_update.items()):
            lines.append(f"   {n:>10,} articles: {r.peak_rss_kb / 1024:6.1f} MiB")
        lines += [
            "",
            "4. Serving the mirrored 1,000-article hole (every reply checked; bounded runs)",
            f"   {'server':16}{'conns':>6}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}"
            f"{'failed':>8}{'requests':>10}",
        ]
        for row in self.serving:
            ld = row.load
            lines.append(
                f"   {row.server:16}{row.connections:>6}{ld.rps:9.0f}"
                f"{ld.p50_ms:9.2f}{ld.p99_ms:9.2f}{ld.failed:>8}{ld.ok:>10}"
            )
        if self.parsing:
            p = self.parsing
            lines += [
                "",
                f"5. Parsing a {p.lines:,}-line menu ({p.bytes / MB:.1f} MB), best run",
                f"   protocol.parse_menu   {p.parse_lines_per_s:12,.0f} lines/s",
                f"   bare split loop       {p.split_lines_per_s:12,.0f} lines/s"
                f"   ratio {p.ratio:.2f}x",
            ]
        lines += ["", "Targets"]
        for t in self.targets():
            lines.append(f"   {t.verdict:5} {t.name:58} {t.measured:>14}   (goal {t.goal})")
        return "\n".join(lines)


def _x(value: object) -> str:
    return f"{value:.2f}x" if isinstance(value, float) else "-"
