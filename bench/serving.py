"""Row 4: requests per second and latency of the built-in server beside other servers.

Owns: mirroring a small hole into a world-readable peer root, starting the
built-in server (``gophermirror serve ROOT --port P --quiet`` in a
subprocess), gophernicus and pygopherd on that same root (``tests.peers``),
and the C origin on the hole itself; walking each server's menus from its
root to learn what it serves (the first reply of each selector is the
expected bytes); then bounded load runs at 1, 10 and 50 connections (at
most 5 for pygopherd, whose listen backlog is 5) that check every reply.
Must not touch: any address but 127.0.0.1; processes it did not start.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import attrs

from gophermirror.protocol import MENU, TEXT, parse_menu
from tests.peers import (
    Gophernicus,
    Pygopherd,
    free_port,
    gopher_fetch,
    make_world_readable,
    peer_available,
    peer_root_dir,
    port_accepts,
)

from .hole import write_targets
from .measure import run_measured
from .native import WORK_DIR, BenchError, LoadResult, run_load
from .throughput import Origin, mirror_args

Log = Callable[[str], None]

CONNECTIONS = (1, 10, 50)
PYGOPHERD_CONNECTIONS = (1, 5)
WALK_LIMIT = 5000
"""Most selectors a walk collects."""


@attrs.frozen
class ServerRow:
    """One server at one number of connections."""

    server: str
    connections: int
    selectors: int
    """Distinct selectors requested (found by the walk)."""
    load: LoadResult

    def as_dict(self) -> dict[str, object]:
        """A JSON-ready summary."""
        return {
            "server": self.server,
            "connections": self.connections,
            "selectors": self.selectors,
            **self.load.as_dict(),
        }


@attrs.frozen
class Walk:
    """What a server serves, found by following its menus."""

    replies: dict[bytes, bytes]
    """Selector -> the first reply (the bytes every later reply must equal)."""
    documents: int
    """How many of the selectors are text items."""


def walk(port: int, start: bytes = b"", limit: int = WALK_LIMIT) -> Walk:
    """Every menu and text item reachable on 127.0.0.1:``port`` from ``start``."""
    found: dict[bytes, bytes] = {}
    documents = 0
    queue: list[tuple[bytes, bytes]] = [(MENU, start)]
    seen = {start}
    while queue and len(found) < limit:
        item_type, selector = queue.pop(0)
        reply = gopher_fetch(port, selector, timeout=30.0)
        found[selector] = reply
        if item_type != MENU:
            documents += 1
            continue
        body = reply[:-3] if reply.endswith(b"\r\n.\r\n") else reply
        for item in parse_menu(body).items:
            if item.type not in (MENU, TEXT) or item.selector is None:
                continue
            if item.host != b"127.0.0.1" or item.port != port or item.selector in seen:
                continue
            if any(c in item.selector for c in b"\t\r\n"):
                continue
            seen.add(item.selector)
            queue.append((item.type, item.selector))
    return Walk(found, documents)


@contextlib.contextmanager
def builtin_server(root: Path, work: Path) -> Iterator[int]:
    """``gophermirror serve ROOT --port P --quiet`` in a subprocess; yields the port."""
    port = free_port()
    argv = [
        sys.executable,
        "-m",
        "gophermirror",
        "serve",
        str(root),
        "--port",
        str(port),
        "--quiet",
    ]
    process = subprocess.Popen(
        argv, cwd=work, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 30
        while not port_accepts(port):
            if process.poll() is not None or time.monotonic() > deadline:
                err = process.stderr.read().decode() if process.stderr else ""
                raise BenchError(f"gophermirror serve did not start: {err[-2000:]}")
            time.sleep(0.05)
        yield port
    finally:
        for sig in (signal.SIGINT, signal.SIGKILL):
            if process.poll() is not None:
                break
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=10)
        if process.stderr:
            process.stderr.close()


def _load_rows(
    name: str,
    port: int,
    expected: dict[bytes, bytes],
    connections: tuple[int, ...],
    load_bin: Path,
    requests: int,
    seconds: float,
    log: Log,
) -> list[ServerRow]:
    targets = write_targets(WORK_DIR / f"serve-{name.replace(' ', '-')}.targets", expected.items())
    rows = []
    for count in connections:
        result = run_load(
            load_bin, port, targets, requests=requests, connections=count, seconds=seconds
        )
        log(
            f"  {name} at {count} connections: {result.rps:.0f} req/s, p50 {result.p50_ms:.2f} ms,"
            f" p99 {result.p99_ms:.2f} ms, {result.failed} failed"
        )
        if result.failed:
            log(result.errors.strip())
        rows.append(ServerRow(name, count, len(expected), result))
    targets.unlink(missing_ok=True)
    return rows


def serving_rows(
    origin: Origin, *, requests: int, seconds: float, log: Log
) -> tuple[list[ServerRow], dict[str, object]]:
    """Mirror ``origin``'s hole, then load every server; returns the rows and notes."""
    notes: dict[str, object] = {}
    root = peer_root_dir("bench-serve-")
    try:
        argv = [sys.executable, "-m", "gophermirror", *mirror_args(origin.hole.url(), root, 8)]
        done = run_measured(argv, cwd=origin.work, timeout=600)
        if done.returncode != 0:
            raise BenchError(f"mirror for the serving row failed: {done.stderr[-2000:]!r}")
        make_world_readable(root)
        rows: list[ServerRow] = []

        with builtin_server(root, origin.work) as port:
            found = walk(port)
            _check_walk("gophermirror", found, origin, notes)
            rows += _load_rows(
                "gophermirror",
                port,
                found.replies,
                CONNECTIONS,
                origin.load_bin,
                requests,
                seconds,
                log,
            )

        for name, server_class, connections in (
            ("gophernicus", Gophernicus, CONNECTIONS),
            ("pygopherd", Pygopherd, PYGOPHERD_CONNECTIONS),
        ):
            if not peer_available(name):
                log(f"  {name} is not installed: row left out")
                notes[name] = "not installed"
                continue
            with server_class(root) as peer:
                found = walk(peer.port)
                _check_walk(name, found, origin, notes)
                rows += _load_rows(
                    name,
                    peer.port,
                    found.replies,
                    connections,
                    origin.load_bin,
                    requests,
                    seconds,
                    log,
                )

        expected = {s: origin.hole.replies[s] for s in origin.hole.items}
        rows += _load_rows(
            "C origin", origin.port, expected, CONNECTIONS, origin.load_bin, requests, seconds, log
        )
        return rows, notes
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _check_walk(name: str, found: Walk, origin: Origin, notes: dict[str, object]) -> None:
    """The walk must find the hole's documents, so every server does the same work."""
    wanted = len(origin.hole.documents)
    articles = {origin.hole.replies[s] for s in origin.hole.documents}
    exact = sum(1 for reply in found.replies.values() if reply in articles)
    notes[name] = {
        "selectors": len(found.replies),
        "documents": found.documents,
        "documents_byte_for_byte": exact,
    }
    if found.documents < wanted:
        raise BenchError(f"{name}: the walk found {found.documents} of {wanted} documents")
