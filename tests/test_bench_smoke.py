"""Smoke test of the benchmark's own parts: hole generator, C origin, load client.

Checks bytes, never timing: the origin must answer every selector with the
hole's exact reply and count what it was asked; the load client must see
every reply right, and must report a reply that differs from what it
expects.  Needs gcc (fails when CI is set and gcc is missing).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from bench.hole import INDEX, ROOT, build_hole, write_targets
from bench.native import COrigin, build, run_load
from gophermirror.protocol import MENU, parse_menu
from tests.peers import free_port, gopher_fetch

ARTICLES = 150
REQUESTS = 300


def require_gcc() -> None:
    if shutil.which("gcc") is not None:
        return
    message = "gcc is not installed (apt-get install -y gcc): the bench compiles its origin"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="module")
def binaries(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    require_gcc()
    work = tmp_path_factory.mktemp("bench-work")
    return build("origin", work), build("load", work)


def test_hole_shape() -> None:
    hole = build_hole(ARTICLES, 7070)
    assert len(hole.documents) == ARTICLES + 1  # the articles and about.txt
    assert hole.menus[0] == ROOT and INDEX in hole.menus
    linked: set[bytes] = set()
    for selector in hole.menus:
        reply = hole.replies[selector]
        assert reply.endswith(b"\r\n.\r\n")
        menu = parse_menu(reply[:-3])
        links = [i for i in menu.items if i.host == b"127.0.0.1" and i.port == 7070]
        linked |= {i.selector for i in links if i.selector is not None}
        if selector != ROOT:
            # Every menu but the root links back to the root: the graph has cycles.
            assert any(i.selector == ROOT and i.type == MENU for i in links)
    assert set(hole.items) - {ROOT} <= linked
    pages = [s for s in hole.menus if s.startswith(INDEX + b"/")]
    assert len(pages) == 2
    first_page = parse_menu(hole.replies[pages[0]][:-3])
    assert sum(1 for i in first_page.items if i.type == b"0") == 100


def test_origin_serves_the_hole_byte_for_byte(binaries: tuple[Path, Path], tmp_path: Path) -> None:
    origin_bin, load_bin = binaries
    port = free_port()
    hole = build_hole(ARTICLES, port)
    hole_file = hole.write_origin_file(tmp_path / "hole.origin")
    targets = write_targets(tmp_path / "hole.targets", ((s, hole.replies[s]) for s in hole.items))
    with COrigin(origin_bin, hole_file, port, threads=2) as origin:
        for selector in (ROOT, INDEX, hole.documents[-1], b"robots.txt"):
            assert gopher_fetch(port, selector, timeout=10) == hole.replies[selector]
        assert gopher_fetch(port, b"/nope", timeout=10).startswith(b"3'/nope' does not exist\t")
        stats = origin.stats()
        assert (stats.requests, stats.missing) == (5, 1)
        assert stats.hits[INDEX] == 1 and stats.hits[b"robots.txt"] == 1

        origin.reset()
        result = run_load(load_bin, port, targets, requests=REQUESTS, connections=4, seconds=10)
        assert (result.started, result.ok, result.failed) == (REQUESTS, REQUESTS, 0), result.errors
        expected_bytes = sum(
            len(hole.replies[hole.items[i % len(hole.items)]]) for i in range(REQUESTS)
        )
        assert result.bytes == expected_bytes
        assert 0 < result.p50_ms <= result.p99_ms <= result.max_ms
        stats = origin.stats()
        assert stats.requests == REQUESTS and stats.missing == 0
        assert stats.reply_bytes == expected_bytes
        assert sum(stats.hits.values()) == REQUESTS


def test_load_client_reports_wrong_bytes(binaries: tuple[Path, Path], tmp_path: Path) -> None:
    origin_bin, load_bin = binaries
    port = free_port()
    hole = build_hole(ARTICLES, port)
    hole_file = hole.write_origin_file(tmp_path / "hole.origin")
    article = hole.documents[-1]
    wrong = [
        (ROOT, hole.replies[ROOT]),  # right
        (article, hole.replies[article][:-1] + b"?"),  # same length, other bytes
        (INDEX, hole.replies[INDEX] + b"x"),  # one byte too many expected
    ]
    targets = write_targets(tmp_path / "wrong.targets", wrong)
    with COrigin(origin_bin, hole_file, port, threads=1):
        result = run_load(load_bin, port, targets, requests=30, connections=3, seconds=10)
    assert (result.ok, result.failed) == (10, 20)
    assert "wrong checksum" in result.errors and "wrong length" in result.errors
