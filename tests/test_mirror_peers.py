"""Mirroring real Debian servers: gophernicus and pygopherd on loopback.

Every stored body (plus its recorded terminator) must equal what the origin
sends on the wire; a second run must download no article again.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from gophermirror.store import Store
from tests.peers import HoleOnDisk, PeerServer

pytestmark = pytest.mark.peer

FEED = "/feeds/news/eurasianet"


def run_mirror(url: str, root: Path, *extra: str) -> dict[str, object]:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "gophermirror",
            "mirror",
            url,
            "--root",
            str(root),
            "--delay",
            "0",
            "--concurrency",
            "3",
            "--json",
            *extra,
        ],
        capture_output=True,
        timeout=120,
    )
    assert out.returncode in (0, 1), out.stderr.decode()
    document: dict[str, object] = json.loads(out.stdout)
    document["exit"] = out.returncode
    return document


def check_store_matches_wire(root: Path, server: PeerServer) -> int:
    """Every OK row's body + terminator is exactly what the server sends now."""
    checked = 0
    with Store.open(root, create=False) as store:
        assert not store.verify().problems
        for entry in store.entries():
            if entry.status != "ok":
                continue
            wire = server.fetch(entry.selector)
            assert store.read_body(entry) + entry.terminator == wire, entry.url
            checked += 1
    return checked


@pytest.fixture(params=["gophernicus", "pygopherd"])
def served(request: pytest.FixtureRequest, hole: HoleOnDisk) -> tuple[PeerServer, HoleOnDisk]:
    server: PeerServer = request.getfixturevalue(f"{request.param}_hole")
    return server, hole


def test_mirror_feed_byte_exact_and_update_downloads_nothing(
    served: tuple[PeerServer, HoleOnDisk], tmp_path: Path
) -> None:
    server, hole = served
    root = tmp_path / "m"
    first = run_mirror(server.url(FEED, "1"), root)
    assert first["exit"] == 0, first["errors"]
    items = first["items"]
    assert isinstance(items, dict)
    articles = [s for s in hole.items if s.startswith(FEED + "/") and s != FEED + "/"]
    assert items["new"] == len(articles) + 1  # the menu and every article
    assert check_store_matches_wire(root, server) == len(articles) + 1
    if server.name == "pygopherd":  # pygopherd sends files as they are on disk
        with Store.open(root, create=False) as store:
            for selector in articles:
                entry = store.get("127.0.0.1", server.port, selector.encode(), "file")
                assert entry is not None and store.read_body(entry) == hole.items[selector][1]

    second = run_mirror(server.url(FEED, "1"), root)
    assert second["exit"] == 0
    assert second["items"] == {
        "new": 0,
        "changed": 0,
        "unchanged": len(articles) + 1,
        "gone": 0,
        "failed": 0,
    }
    assert second["requests"] <= 3  # the menu, robots.txt, caps.txt: no article


def test_mirror_whole_hole_with_awkward_files(
    served: tuple[PeerServer, HoleOnDisk], tmp_path: Path
) -> None:
    server, _hole = served
    root = tmp_path / "m"
    report = run_mirror(server.url("/", "1"), root)
    assert report["exit"] == 0, report["errors"]
    check_store_matches_wire(root, server)
    with Store.open(root, create=False) as store:
        stored = {
            e.selector.decode("utf-8", "replace") for e in store.entries() if e.status == "ok"
        }
    for name in ("dots.txt", "latin1.txt", "crlf.txt", "nonl.txt", "random.bin", "pixel.png"):
        assert f"/misc/{name}" in stored, (name, sorted(stored))


def test_mirror_mapped_hole_keeps_foreign_links_and_cycles(
    start_peer: Callable[..., PeerServer], mapped_hole: HoleOnDisk, tmp_path: Path
) -> None:
    for name in ("gophernicus", "pygopherd"):
        server = start_peer(name, mapped_hole.root)
        root = tmp_path / name
        report = run_mirror(server.url("/", "1"), root)
        # /search is a type-7 item and other.example is another host: never fetched.
        assert report["exit"] == 0, report["errors"]
        check_store_matches_wire(root, server)
        with Store.open(root, create=False) as store:
            hosts = {e.host for e in store.entries()}
            assert hosts == {"127.0.0.1"}
            menu = store.get("127.0.0.1", server.port, b"/", "menu") or store.get(
                "127.0.0.1", server.port, b"", "menu"
            )
            assert menu is not None
            raw = store.read_body(menu)
            assert b"other.example" in raw  # foreign links are kept in the stored menu
        server.stop()


def test_mirror_hostile_and_missing_selectors(
    start_peer: Callable[..., PeerServer], peer_root: Path, tmp_path: Path
) -> None:
    """A real server's menu listing hostile and missing selectors: errors, no escape."""
    from tests.peers import make_world_readable

    (peer_root / "ok.txt").write_bytes(b"fine\n")
    hostile = [
        "/../../../etc/passwd",
        "/%2e%2e/%2e%2e/etc/passwd",
        "\\..\\..\\windows",
        "/a/../../b",
        "/missing.txt",
        "/ok.txt",
    ]
    lines = [f"0{sel}\t{sel}" for sel in hostile]
    (peer_root / "gophermap").write_bytes(("\r\n".join(lines) + "\r\n").encode())
    make_world_readable(peer_root)
    for name in ("gophernicus", "pygopherd"):
        server = start_peer(name, peer_root)
        root = tmp_path / name
        outside_before = sorted(p.name for p in tmp_path.iterdir())
        report = run_mirror(server.url("/", "1"), root)
        with Store.open(root, create=False) as store:
            assert not store.verify().problems
            ok = store.get("127.0.0.1", server.port, b"/ok.txt", "file")
            assert ok is not None and store.read_body(ok) + ok.terminator == server.fetch(
                b"/ok.txt"
            )
        # Nothing was written anywhere but the store.
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted({*outside_before, name})
        for path in root.rglob("*"):
            assert path.resolve().is_relative_to(root.resolve())
        if name == "pygopherd":  # it answers type 3 for each: recorded as failures
            assert report["exit"] == 1
            failed = {e["url"] for e in report["errors"]}
            assert any("missing.txt" in u for u in failed)
        server.stop()
