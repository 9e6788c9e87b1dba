"""Mirroring a loopback hole: byte-exact store, scope, updates, gone, resume."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
from itertools import pairwise
from pathlib import Path

import pytest
import trio

from gophermirror.crawler import CrawlSettings
from gophermirror.mirror import mirror
from gophermirror.protocol import GopherURL, link_line
from gophermirror.store import Store
from gophermirror.testing import (
    FEED_SELECTOR,
    MemoryHole,
    feed_menu_lines,
    local_link,
    sample_hole,
    serve_hole,
)

FAST = CrawlSettings(delay=0.0, concurrency=4)


def stored_bodies(root: Path, port: int) -> dict[bytes, tuple[bytes, bytes]]:
    """selector -> (raw bytes as served, item type) for every OK row of the hole."""
    out = {}
    with Store.open(root, create=False) as store:
        for entry in store.entries("127.0.0.1", port):
            if entry.status == "ok":
                out[entry.selector] = (store.read_body(entry) + entry.terminator, entry.item_type)
    return out


async def test_mirror_sample_hole_byte_exact(tmp_path: Path) -> None:
    hole = sample_hole(articles=8)
    root = tmp_path / "m"
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            port = await nursery.start(serve_hole, hole)
            start = GopherURL("127.0.0.1", port, b"1", b"")
            report = await mirror(root, [start], FAST)
            nursery.cancel_scope.cancel()
    assert report.ok, report.errors
    stored = stored_bodies(root, port)
    # Every selector of the hole is stored, each exactly as the origin sent it.
    assert set(stored) == set(hole.replies)
    for selector, (raw, _type) in stored.items():
        assert raw == hole.replies[selector], selector
    assert report.menus == 4 and report.new == 4 + 1 + 8
    # Other hosts and URL: links are kept in the menus but never fetched.
    assert all(s.startswith((b"/feeds", b"/about")) or s == b"" for s in stored)
    # The store is servable as it is: a gophermap in every menu directory.
    with Store.open(root, create=False) as store:
        for entry in store.entries():
            if entry.kind == "menu":
                assert (root / entry.path / "gophermap").is_file()
        assert not store.verify().problems
    assert (root / "gophermap").is_file()


async def test_update_run_fetches_only_menus_then_new_items(tmp_path: Path) -> None:
    hole = sample_hole(articles=6)
    root = tmp_path / "m"
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            port = await nursery.start(serve_hole, hole)
            start = GopherURL("127.0.0.1", port, b"1", FEED_SELECTOR)
            first = await mirror(root, [start], FAST)
            assert first.ok and first.new == 7  # the feed menu and six articles
            hole.requests.clear()
            second = await mirror(root, [start], FAST)
            assert second.ok
            fetched = [r for r in hole.requests if r not in (b"robots.txt", b"caps.txt")]
            assert fetched == [FEED_SELECTOR]  # only the menu: no article again
            assert (second.new, second.changed, second.unchanged) == (0, 0, 7)
            # Day 2: two articles appear, one goes away.
            from gophermirror.article import sample_article

            for n in (4795, 4796):
                hole.add(FEED_SELECTOR + b"/" + str(n).encode(), sample_article(n))
            hole.remove(FEED_SELECTOR + b"/4789")
            hole.add_menu(
                FEED_SELECTOR, feed_menu_lines([4796, 4795, 4794, 4793, 4792, 4791, 4790])
            )
            hole.requests.clear()
            third = await mirror(root, [start], FAST)
            nursery.cancel_scope.cancel()
    assert third.ok
    assert sorted(r for r in hole.requests if r not in (b"robots.txt", b"caps.txt")) == sorted(
        [FEED_SELECTOR, FEED_SELECTOR + b"/4795", FEED_SELECTOR + b"/4796"]
    )
    assert (third.new, third.changed, third.gone) == (2, 1, 1)
    with Store.open(root, create=False) as store:
        gone = store.get("127.0.0.1", port, FEED_SELECTOR + b"/4789", "file")
        assert gone is not None and gone.status == "gone"
        assert (root / gone.path).is_file()  # kept, never deleted without --prune


async def test_failures_are_recorded_and_the_crawl_goes_on(tmp_path: Path) -> None:
    hole = MemoryHole()
    hole.add_menu(
        b"",
        [
            local_link(b"0", "Good", b"/good"),
            local_link(b"0", "Missing", b"/missing"),
            link_line(b"0", "Refused", b"/x", "127.0.0.1", 1),
            local_link(b"0", "Also good", b"/good2"),
        ],
    )
    hole.add(b"/good", b"good\n")
    hole.add(b"/good2", b"good too\n")
    root = tmp_path / "m"
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            port = await nursery.start(serve_hole, hole)
            report = await mirror(root, [GopherURL("127.0.0.1", port, b"1", b"")], FAST)
            nursery.cancel_scope.cancel()
    assert not report.ok and report.failed == 1 and report.new == 3
    (error,) = report.errors
    assert error.url == f"gopher://127.0.0.1:{port}/0/missing" and error.error == "ServerError"
    # The other-port link was out of scope (same host, other port), so never tried.
    with Store.open(root, create=False) as store:
        row = store.get("127.0.0.1", port, b"/missing", "file")
        assert row is not None and row.status == "failed"
        assert not store.verify().problems


async def test_scope_depth_include_exclude(tmp_path: Path) -> None:
    hole = sample_hole(articles=3)
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            port = await nursery.start(serve_hole, hole)
            start = GopherURL("127.0.0.1", port, b"1", b"")
            shallow = await mirror(tmp_path / "a", [start], CrawlSettings(delay=0, depth=0))
            assert shallow.menus == 1 and shallow.new == 2  # root menu + about.txt
            excl = await mirror(
                tmp_path / "b", [start], CrawlSettings(delay=0, exclude=(r"/479[01]$",))
            )
            assert excl.new == 4 + 1 + 1
            sub = await mirror(
                tmp_path / "c",
                [GopherURL("127.0.0.1", port, b"1", b"/feeds/news")],
                CrawlSettings(delay=0),
            )
            # Under /feeds/news only: the back-link to /feeds is not followed.
            assert sub.menus == 2 and sub.new == 2 + 3
            nursery.cancel_scope.cancel()


async def test_cycles_and_traps_are_bounded(tmp_path: Path) -> None:
    hole = MemoryHole()
    # A menu linking to itself, its parent, and ten menus per level forever (up to the cap).
    for level in range(4):
        for i in range(10**level if level < 3 else 1):
            sel = f"/t/{level}/{i}".encode()
            hole.add_menu(
                sel,
                [
                    local_link(b"1", f"child {j}", f"/t/{level + 1}/{i * 10 + j}".encode())
                    for j in range(10)
                ]
                + [local_link(b"1", "self", sel), local_link(b"1", "up", b"/t/0/0")],
            )
    hole.add_menu(b"/t", [local_link(b"1", "top", b"/t/0/0")])
    root = tmp_path / "m"
    settings = CrawlSettings(delay=0, max_items=150, concurrency=8)
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            port = await nursery.start(serve_hole, hole)
            report = await mirror(root, [GopherURL("127.0.0.1", port, b"1", b"/t")], settings)
            nursery.cancel_scope.cancel()
    assert report.truncated
    assert report.menus + report.failed <= 151
    requested = [r for r in hole.requests if r.startswith(b"/t/")]
    assert len(requested) == len(set(requested))  # each menu fetched once per run


async def test_robots_txt_is_honoured(tmp_path: Path) -> None:
    hole = sample_hole(articles=4)
    hole.add(b"robots.txt", b"User-agent: *\nDisallow: /feeds/news/eurasianet/4790\n")
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            port = await nursery.start(serve_hole, hole)
            start = GopherURL("127.0.0.1", port, b"1", b"")
            polite = await mirror(tmp_path / "a", [start], CrawlSettings(delay=0))
            assert polite.skipped_robots == 1
            assert FEED_SELECTOR + b"/4790" not in hole.requests
            assert hole.requests[0] == b"robots.txt"
            rude = await mirror(tmp_path / "b", [start], CrawlSettings(delay=0, robots=False))
            assert rude.skipped_robots == 0 and FEED_SELECTOR + b"/4790" in hole.requests
            nursery.cancel_scope.cancel()


async def test_delay_spaces_requests(tmp_path: Path) -> None:
    hole = sample_hole(articles=5)
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            port = await nursery.start(serve_hole, hole)
            await mirror(
                tmp_path / "m",
                [GopherURL("127.0.0.1", port, b"1", FEED_SELECTOR)],
                CrawlSettings(delay=0.1, concurrency=2),
                durable=False,
            )
            nursery.cancel_scope.cancel()
    stamps = hole.request_times
    gaps = [b - a for a, b in pairwise(stamps)]
    # robots.txt, caps.txt, the menu and five articles, each at least 0.1 s apart.
    assert len(stamps) == 8 and min(gaps) >= 0.095


async def test_host_gate_concurrency_and_delay(autojump_clock: trio.testing.MockClock) -> None:
    from gophermirror.politeness import HostGate

    gate = HostGate(concurrency=2, delay=1.0)
    active = peak = 0
    starts: list[float] = []

    async def request() -> None:
        nonlocal active, peak
        async with gate:
            starts.append(trio.current_time())
            active += 1
            peak = max(peak, active)
            await trio.sleep(5)
            active -= 1

    async with trio.open_nursery() as nursery:
        for _ in range(6):
            nursery.start_soon(request)
    assert peak == 2
    assert all(b - a >= 1.0 for a, b in pairwise(starts))
    zero = HostGate(concurrency=3, delay=0)
    t0 = trio.current_time()
    async with zero:
        pass
    assert trio.current_time() == t0


# --- kill and resume ------------------------------------------------------------

SCRIPT = r"""
import sys, trio
from gophermirror.mirror import mirror
from gophermirror.crawler import CrawlSettings
from gophermirror.protocol import parse_url
settings = CrawlSettings(delay=0.002, concurrency=2, commit_every=5)
trio.run(lambda: mirror(sys.argv[1], [parse_url(sys.argv[2])], settings))
"""


@pytest.mark.slow
async def test_kill_and_resume(tmp_path: Path) -> None:
    hole = sample_hole(articles=120)
    root = tmp_path / "m"
    rng = random.Random(1436)
    with trio.fail_after(240):
        async with trio.open_nursery() as nursery:
            port = await nursery.start(serve_hole, hole)
            url = f"gopher://127.0.0.1:{port}/1"
            for _trial in range(6):
                proc = subprocess.Popen([sys.executable, "-c", SCRIPT, str(root), url])
                await trio.sleep(rng.uniform(0.05, 0.6))
                proc.send_signal(signal.SIGKILL)
                proc.wait(timeout=10)
                with Store.open(root) as store:
                    assert not [p for p in store.verify().problems if p.kind != "orphan"]
            stored_before = {s for s, _ in stored_bodies(root, port).items()}
            hole.requests.clear()
            report = await mirror(root, [GopherURL("127.0.0.1", port, b"1", b"")], FAST)
            nursery.cancel_scope.cancel()
    assert report.ok
    refetched = {
        r
        for r in hole.requests
        if r in stored_before and r not in (b"", b"/feeds", b"/feeds/news", FEED_SELECTOR)
    }
    assert refetched == set()  # nothing stored was downloaded again
    stored = stored_bodies(root, port)
    assert set(stored) == set(hole.replies)
    assert all(raw == hole.replies[s] for s, (raw, _) in stored.items())


# --- regressions from review -----------------------------------------------------


async def test_gone_respects_the_selector_boundary_and_narrowed_runs(tmp_path: Path) -> None:
    hole = MemoryHole()
    hole.add_menu(b"/a", [local_link(b"0", "y", b"/a/y"), local_link(b"1", "deep", b"/a/d")])
    hole.add_menu(b"/a/d", [local_link(b"0", "z", b"/a/d/z")])
    hole.add_menu(b"/ab", [local_link(b"0", "x", b"/ab/x")])
    for sel in (b"/a/y", b"/a/d/z", b"/ab/x"):
        hole.add(sel, b"text\n")
    root = tmp_path / "m"
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            port = await nursery.start(serve_hole, hole)
            await mirror(root, [GopherURL("127.0.0.1", port, b"1", b"/ab")], FAST)
            full = await mirror(root, [GopherURL("127.0.0.1", port, b"1", b"/a")], FAST)
            assert full.gone == 0  # /ab is not under /a
            narrowed = await mirror(
                root, [GopherURL("127.0.0.1", port, b"1", b"/a")], CrawlSettings(delay=0, depth=0)
            )
            assert narrowed.gone == 0  # /a/d/z was not reached, not gone
            nursery.cancel_scope.cancel()
    with Store.open(root, create=False) as store:
        assert all(e.status == "ok" for e in store.entries())


async def test_map_of_unchanged_menu_follows_an_item_that_arrived(tmp_path: Path) -> None:
    """An item that arrives in this run before an unchanged menu linking it is expanded."""
    from gophermirror import maps

    hole = MemoryHole()
    hole.add_menu(b"", [local_link(b"0", "d", b"/d"), local_link(b"1", "m1", b"/m1")])
    hole.add_menu(b"/m1", [local_link(b"1", "m", b"/m1/m")])
    hole.add_menu(b"/m1/m", [local_link(b"0", "d again", b"/d")])
    root = tmp_path / "m"
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            port = await nursery.start(serve_hole, hole)
            start = [GopherURL("127.0.0.1", port, b"1", b"")]
            await mirror(root, start, CrawlSettings(delay=0, robots=False))  # /d is missing
            hole.add(b"/d", b"dee\r\n")
            await mirror(root, start, CrawlSettings(delay=0, robots=False))
            nursery.cancel_scope.cancel()
    with Store.open(root, create=False) as store:
        menu = store.get("127.0.0.1", port, b"/m1/m", "menu")
        assert menu is not None
        on_disk = (root / maps.map_relpath(menu)).read_bytes()
        assert f"/127.0.0.1_{port}/d".encode() in on_disk
