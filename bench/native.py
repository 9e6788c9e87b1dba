"""The benchmark's two C programs: compile them, run the origin, run the load client.

Owns: compiling ``bench/origin.c`` and ``bench/load.c`` with ``gcc -O2``
into ``bench/work/bin/`` (again whenever a source changes), ``COrigin`` (start
on a port, read its request counters, reset them, stop it by PID), and
``run_load`` (one bounded load run, its JSON figures).  Must not touch: any
address but 127.0.0.1; processes it did not start.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import select
import shutil
import signal
import subprocess
from pathlib import Path
from types import TracebackType
from typing import Self

import attrs

from tests.peers import gopher_fetch

BENCH_DIR = Path(__file__).resolve().parent
"""``bench/`` in the source tree."""
WORK_DIR = BENCH_DIR / "work"
"""Scratch space (git-ignored): binaries, hole files, disk mirrors."""
HOST = "127.0.0.1"


class BenchError(RuntimeError):
    """The benchmark could not run or measure something (not a slow result)."""


def build(name: str, work: Path = WORK_DIR) -> Path:
    """Compile ``bench/<name>.c`` to ``work/bin/<name>`` unless it is up to date."""
    gcc = shutil.which("gcc")
    if gcc is None:
        raise BenchError(
            "gcc is not installed (apt-get install -y gcc): the bench compiles its origin"
        )
    source = BENCH_DIR / f"{name}.c"
    text = source.read_bytes()
    digest = hashlib.sha256(text).hexdigest()[:16]
    out_dir = work / "bin"
    out_dir.mkdir(parents=True, exist_ok=True)
    binary = out_dir / name
    stamp = out_dir / f"{name}.sha"
    if binary.exists() and stamp.exists() and stamp.read_text() == digest:
        return binary
    command = [gcc, "-O2", "-Wall", "-pthread", "-o", str(binary), str(source)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    if done.returncode != 0:
        raise BenchError(f"gcc failed on {source.name}:\n{done.stderr}")
    stamp.write_text(digest)
    return binary


@attrs.frozen
class OriginStats:
    """The origin's counters since it started or was last reset."""

    requests: int
    """Requests answered (control selectors not counted)."""
    missing: int
    """Requests for selectors the hole does not have."""
    reply_bytes: int
    """Reply bytes of the known selectors."""
    hits: dict[bytes, int]
    """Selector -> times asked for (only those asked for)."""


def parse_stats(text: bytes) -> OriginStats:
    """Read the ``/.bench/stats`` reply."""
    totals: dict[bytes, int] = {}
    hits: dict[bytes, int] = {}
    for line in text.split(b"\n"):
        if line.startswith(b"hit "):
            count, _, selector = line[4:].partition(b"\t")
            hits[selector] = int(count)
        elif line:
            key, _, value = line.partition(b" ")
            totals[key] = int(value)
    return OriginStats(totals[b"requests"], totals[b"missing"], totals[b"bytes"], hits)


@attrs.define(eq=False)
class COrigin:
    """The C in-memory origin serving one hole file; a context manager."""

    binary: Path
    hole_file: Path
    port: int
    threads: int | None = None
    """Worker threads (default: one per CPU)."""
    process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> Self:
        """Start it and wait until it says it is ready and accepts connections."""
        argv = [str(self.binary), str(self.hole_file), str(self.port)]
        if self.threads is not None:
            argv.append(str(self.threads))
        self.process = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        assert self.process.stdout is not None
        ready, _, _ = select.select([self.process.stdout], [], [], timeout)
        line = self.process.stdout.readline() if ready else b""
        if not line.startswith(b"ready"):
            self.stop()
            raise BenchError(f"the C origin did not start on port {self.port}: {line!r}")
        return self

    def stats(self) -> OriginStats:
        """Its counters, read through the ``/.bench/stats`` selector."""
        return parse_stats(gopher_fetch(self.port, b"/.bench/stats"))

    def reset(self) -> None:
        """Zero its counters."""
        if gopher_fetch(self.port, b"/.bench/reset") != b"reset\n":
            raise BenchError("the C origin did not reset its counters")

    def stop(self) -> str:
        """Stop it by PID (SIGTERM, then SIGKILL); returns what it printed on stderr."""
        process, self.process = self.process, None
        if process is None:
            return ""
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        try:
            _, err = process.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            _, err = process.communicate(timeout=10)
        return err.decode("utf-8", "replace")

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


@attrs.frozen
class LoadResult:
    """What one load run measured."""

    started: int
    ok: int
    """Requests whose reply had exactly the expected length and CRC-32."""
    failed: int
    bytes: int
    seconds: float
    rps: float
    """Correct replies per second."""
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    connections: int
    threads: int
    errors: str = ""
    """The load client's description of the first failures."""

    def as_dict(self) -> dict[str, object]:
        """A JSON-ready copy."""
        return attrs.asdict(self)


def run_load(
    binary: Path,
    port: int,
    targets: Path,
    *,
    requests: int,
    connections: int,
    seconds: float,
    threads: int | None = None,
) -> LoadResult:
    """One bounded run of the load client against 127.0.0.1:``port``."""
    argv = [str(binary), str(port), str(targets), str(requests), str(connections), str(seconds)]
    if threads is not None:
        argv.append(str(threads))
    done = subprocess.run(argv, capture_output=True, timeout=seconds + 60, check=False)
    if done.returncode not in (0, 1) or not done.stdout.strip():
        raise BenchError(f"load client failed ({done.returncode}): {done.stderr.decode()[:2000]}")
    figures = json.loads(done.stdout)
    return LoadResult(**figures, errors=done.stderr.decode("utf-8", "replace"))


def cpu_count() -> int:
    """CPUs this process may run on."""
    return len(os.sched_getaffinity(0))
