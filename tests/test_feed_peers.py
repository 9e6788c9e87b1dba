"""Following a feed served by a real Debian gopher server (gophernicus, pygopherd).

The fixture hole (``tests.peers.build_fixture_hole``, with gophermaps) is
served from a world-readable scratch root; articles are added between runs
by writing files and rewriting the feed's gophermap, and the server is
stopped in the middle of an update, then started again on the same port.
Every article must be reported new exactly once and stored exactly as the
server sends it.  Needs the peers: fails when CI is set, skips otherwise.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
import trio

from gophermirror.config import Config, Feed, Politeness
from gophermirror.feed import FeedUpdate, list_articles, read_article, update_feeds
from gophermirror.paths import hole_dirname
from gophermirror.protocol import MENU, GopherURL
from gophermirror.store import Store
from tests.peers import (
    FEED_DIR,
    FIRST_ARTICLE,
    SERVERS,
    PeerServer,
    build_fixture_hole,
    make_world_readable,
    peer_root_dir,
    require_peer,
    sample_article,
    sample_title,
)

pytestmark = pytest.mark.peer

FIRST_RUN = 6


def write_feed(root: Path, numbers: Sequence[int]) -> None:
    """Article files for ``numbers`` and a feed gophermap listing them newest first."""
    for n in numbers:
        path = root / FEED_DIR / str(n)
        if not path.exists():
            path.write_bytes(sample_article(n))
    lines = ["Eurasianet via the fixture hole", ""]
    lines += [f"0{sample_title(n)}\t/{FEED_DIR}/{n}" for n in sorted(numbers, reverse=True)]
    lines += ["", "1Up to news\t/feeds/news", "1Back to the top\t/"]
    (root / FEED_DIR / "gophermap").write_text("".join(line + "\n" for line in lines))
    make_world_readable(root)


def numbers_of(updates: Sequence[FeedUpdate]) -> list[int]:
    return [int(a.selector.rsplit(b"/", 1)[1]) for u in updates for a in u.new]


@pytest.fixture
def hole_root() -> Iterator[Path]:
    root = peer_root_dir("feed-hole-")
    try:
        build_fixture_hole(root, n_articles=FIRST_RUN, gophermaps=True)
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def stored_articles(root: Path, port: int) -> int:
    """Article files the store has written so far (read while an update runs)."""
    folder = root / hole_dirname("127.0.0.1", port) / FEED_DIR
    try:
        return sum(name.isdigit() for name in os.listdir(folder))
    except FileNotFoundError:
        return 0


@pytest.mark.parametrize("name", ["gophernicus", "pygopherd"])
async def test_follow_a_real_server_through_an_outage(
    name: str, hole_root: Path, tmp_path: Path
) -> None:
    require_peer(name)
    root = tmp_path / "mirror"
    first = list(range(FIRST_ARTICLE, FIRST_ARTICLE + FIRST_RUN))
    second = list(range(first[-1] + 1, first[-1] + 3))
    third = list(range(second[-1] + 1, second[-1] + 9))
    server: PeerServer = SERVERS[name](hole_root).start()
    port = server.port
    try:
        url = GopherURL("127.0.0.1", port, MENU, f"/{FEED_DIR}".encode())
        config = Config(
            root=root,
            politeness=Politeness(delay=0.0, retries=0, connect_timeout=5.0),
            feeds=(Feed("eurasianet", url),),
        )
        with trio.fail_after(60):
            run1 = await update_feeds(root, config)
            assert run1[0].complete, run1
            assert sorted(numbers_of(run1)) == first

            write_feed(hole_root, first + second)
            run2 = await update_feeds(root, config)
            assert run2[0].complete, run2
            assert numbers_of(run2) == sorted(second, reverse=True)

            # Eight more articles; the server goes away after two of them are stored.
            write_feed(hole_root, first + second + third)
            slow = Config(
                root=root,
                politeness=Politeness(delay=0.3, concurrency=1, retries=0, connect_timeout=5.0),
                feeds=config.feeds,
            )
            before = stored_articles(root, port)
            outcome: list[FeedUpdate] = []
            async with trio.open_nursery() as nursery:

                async def run() -> None:
                    outcome.extend(await update_feeds(root, slow))

                nursery.start_soon(run)
                while stored_articles(root, port) < before + 2:
                    await trio.sleep(0.02)
                await trio.to_thread.run_sync(server.stop)
            run3 = outcome[0]
            assert run3.ok  # the menu came before the outage
            assert run3.warnings  # the articles that failed are reported
            got = numbers_of(outcome)
            assert 2 <= len(got) < len(third) and set(got) < set(third)
            assert run3.waiting == len(third) - len(got)

            server = SERVERS[name](hole_root, port=port).start()  # back on the same port
            run4 = await update_feeds(root, config)
            assert run4[0].complete, run4
            assert sorted(got + numbers_of(run4)) == third

        # Every article was reported once, and is stored as the server sends it.
        everything = numbers_of(run1) + numbers_of(run2) + got + numbers_of(run4)
        assert sorted(everything) == first + second + third
        articles = list_articles(root, config)
        assert len(articles) == len(everything)
        for article in articles:
            with Store.open(root, create=False) as store:
                entry = store.get(article.host, article.port, article.selector, "file")
                assert entry is not None
                term = entry.terminator
            data = await trio.to_thread.run_sync(server.fetch, article.selector)
            assert read_article(root, article) + term == data
        with Store.open(root, create=False) as store:
            assert not store.verify().problems
    finally:
        server.stop()
