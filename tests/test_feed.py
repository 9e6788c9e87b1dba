"""Following feeds: two loopback feeds over several simulated days.

The origin is ``gophermirror.testing.MemoryHole`` served on 127.0.0.1 port 0,
changed between runs (articles added, a menu re-ordered, a title edited, an
article removed and re-added).  Most tests call the library in-process; a
few run ``python -m gophermirror feed ...`` in a subprocess for the exit
statuses and the JSON on stdout.  ``watch`` is tested with trio's
``autojump_clock`` (hours pass in milliseconds) and, for SIGTERM, in a real
subprocess.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from urllib.parse import unquote

import feedparser
import pytest
import trio
import trio.testing
from lxml import etree

from gophermirror.article import make_article
from gophermirror.atom import ATOM_NAMESPACE
from gophermirror.config import Config, Feed, Politeness
from gophermirror.crawler import CrawlSettings
from gophermirror.errors import ConfigError, StoreError
from gophermirror.feed import (
    Article,
    FeedUpdate,
    WatchCheck,
    WatchSettings,
    find_article,
    list_articles,
    next_delay,
    read_article,
    update_feeds,
    watch,
)
from gophermirror.feed_state import FeedState, feed_links
from gophermirror.mirror import mirror
from gophermirror.protocol import (
    MENU,
    TEXT,
    GopherURL,
    MenuItem,
    decode_request,
    format_url,
    info_line,
    link_line,
    parse_menu,
)
from gophermirror.store import Store
from gophermirror.testing import MemoryHole, local_link, serve_hole

ATOM_RNG = Path(__file__).parent / "data" / "atom.rng"
NS = {"atom": ATOM_NAMESPACE}
DAY = 86400.0
DAY1 = datetime.datetime(2025, 7, 10, 12, 0, tzinfo=datetime.UTC).timestamp()
POLITE = Politeness(delay=0.0, concurrency=4, retries=0, connect_timeout=5.0)
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256))


# --------------------------------------------------------------------------
# The fixture hole: /feeds/alpha and /feeds/beta
# --------------------------------------------------------------------------

STORIES: dict[str, tuple[str, str]] = {
    # key: (date, title)
    "a1": ("2025-07-01", "Alpha one: the harbour council weighs a ferry timetable"),
    "a2": ("2025-07-02", "Alpha two: bakers’ guild debates the price of bread"),
    "a3": ("2025-07-03", "Alpha three: a café on the pier"),
    "a4": ("2025-07-04", "Alpha four: the old salt road"),
    "a5": ("2025-07-05", "Alpha five: rules for street musicians"),
    "b1": ("2025-07-01", "Beta one: Kåsvik returns to the winter festival"),
    "b2": ("2025-07-03", "Beta two: a “slow streets” pilot"),
    "b3": ("2025-07-06", "Beta three: the river authority redraws its map"),
}


def meta(key: str) -> tuple[str, str]:
    """(date, title) of ``key``; keys not in STORIES are undistinguished fillers."""
    return STORIES.get(key, ("2025-06-01", f"Filler {key}"))


def story(key: str) -> bytes:
    """The article bytes for ``key`` (magical.fish layout; b2 gets odd framing)."""
    date, title = meta(key)
    body = make_article(
        int.from_bytes(key.encode(), "big"),
        title=title,
        authors=["Ana O'Neill", "Søren Kovač"] if key.startswith("a") else [],
        date=datetime.date.fromisoformat(date),
        url=f"https://news.example.org/{key}",
        paragraphs=[f"First paragraph of {title}.", "A second paragraph, with ünïcode."],
        via="gopher://gopher.example.org/1/feeds/",
        licence=f"Licence of {key}.",
    )
    if key == "b2":  # a lone-dot terminator and a latin-1 byte: both kept exactly
        body = body.replace(b"Beta two", b"Beta two \xe9") + b"\r\n.\r\n"
    return body


def sel(feed: str, key: str) -> bytes:
    return f"/feeds/{feed}/{key}".encode()


def set_feed(
    hole: MemoryHole, feed: str, keys: Sequence[str], titles: dict[str, str] | None = None
) -> None:
    """(Re)write the menu of ``feed`` listing ``keys`` in that order, plus noise."""
    lines: list[MenuItem] = [info_line(f"The {feed} feed"), info_line("")]
    for key in keys:
        if key == "pic":
            lines.append(local_link(b"I", "A picture", sel(feed, "pic")))
            continue
        title = (titles or {}).get(key, meta(key)[1])
        lines.append(info_line(f"--- {meta(key)[0]} ---"))
        lines.append(local_link(TEXT, title, sel(feed, key)))
    lines += [
        info_line(""),
        local_link(MENU, "Up", b"/feeds"),
        local_link(b"7", "Search", b"/search"),
        link_line(TEXT, "Elsewhere", b"/x", "other.example", 70),
        link_line(b"h", "Web", b"URL:https://example.org/", "", 0),
    ]
    hole.add_menu(f"/feeds/{feed}".encode(), lines)


def make_hole() -> MemoryHole:
    hole = MemoryHole()
    for key in STORIES:
        hole.add(sel("alpha" if key.startswith("a") else "beta", key), story(key))
    hole.add(sel("alpha", "pic"), PNG)
    hole.add_menu(
        b"/feeds",
        [local_link(MENU, "Alpha", b"/feeds/alpha"), local_link(MENU, "Beta", b"/feeds/beta")],
    )
    set_feed(hole, "alpha", ["a3", "a2", "a1", "pic"])
    set_feed(hole, "beta", ["b2", "b1"])
    return hole


def make_config(root: Path, port: int, **alpha: object) -> Config:
    feeds = (
        Feed("alpha", GopherURL("127.0.0.1", port, MENU, b"/feeds/alpha"), title="Alpha News",
             **alpha),  # type: ignore[arg-type]
        Feed("beta", GopherURL("127.0.0.1", port, MENU, b"/feeds/beta")),
    )  # fmt: skip
    return Config(root=root, politeness=POLITE, feeds=feeds)


def keys_of(articles: Sequence[Article]) -> list[str]:
    return [a.selector.rsplit(b"/", 1)[1].decode() for a in articles]


def new_keys(updates: Sequence[FeedUpdate]) -> list[str]:
    return [k for u in updates for k in keys_of(u.new)]


def terminator(root: Path, article: Article) -> bytes:
    with Store.open(root, create=False) as store:
        entry = store.get(article.host, article.port, article.selector, "file")
        assert entry is not None
        return entry.terminator


def check_atom(data: bytes) -> etree._Element:
    """Valid Atom 1.0: RFC 4287's RELAX NG schema and a feed reader's parser."""
    parsed = feedparser.parse(data)
    assert parsed.bozo == 0, parsed.get("bozo_exception")
    assert parsed.version == "atom10"
    root = etree.fromstring(data)
    etree.RelaxNG(etree.parse(str(ATOM_RNG))).assertValid(root)
    return root


# --------------------------------------------------------------------------
# Days of following
# --------------------------------------------------------------------------


async def test_days_of_following(tmp_path: Path) -> None:
    hole = make_hole()
    root = tmp_path / "mirror"
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            port = await nursery.start(serve_hole, hole)
            config = make_config(root, port)

            # Day 1: everything listed is new, each article reported once.
            day1 = await update_feeds(root, config, now=DAY1)
            assert [u.name for u in day1] == ["alpha", "beta"]
            assert all(u.complete for u in day1), day1
            assert [keys_of(u.new) for u in day1] == [["pic", "a3", "a2", "a1"], ["b2", "b1"]]
            assert [u.listed for u in day1] == [4, 2]

            # Day 2: alpha gains a4 and a5 and is re-ordered, a2's title is edited;
            # beta loses b1 and gains b3.
            set_feed(hole, "alpha", ["a5", "a1", "a4", "pic", "a3", "a2"],
                     {"a2": "Alpha two (corrected)"})  # fmt: skip
            set_feed(hole, "beta", ["b3", "b2"])
            day2 = await update_feeds(root, config, now=DAY1 + DAY)
            assert [keys_of(u.new) for u in day2] == [["a5", "a4"], ["b3"]]

            # Day 3: b1 comes back: not new.  Nothing else changed: nothing new.
            set_feed(hole, "beta", ["b3", "b2", "b1"])
            day3 = await update_feeds(root, config, now=DAY1 + 2 * DAY)
            assert new_keys(day3) == []
            assert all(u.complete for u in day3)

            # Checking one feed by name leaves the other alone.
            only = await update_feeds(root, config, ["beta"], now=DAY1 + 3 * DAY)
            assert [u.name for u in only] == ["beta"] and new_keys(only) == []
            nursery.cancel_scope.cancel()

    reported = new_keys(day1) + new_keys(day2)
    assert sorted(reported) == sorted([*STORIES, "pic"])  # each exactly once

    # The listing: newest first by article date, then first seen, then id.
    listed = list_articles(root, config, now=DAY1 + 3 * DAY)
    # pic has no date: it counts as the day it was first seen (2025-07-10).
    assert keys_of(listed) == ["pic", "b3", "a5", "a4", "b2", "a3", "a2", "b1", "a1"]
    by_key = dict(zip(keys_of(listed), listed, strict=True))
    assert by_key["a2"].display_title == "Alpha two (corrected)"
    assert by_key["a2"].title == STORIES["a2"][1]  # the article's own title stays
    assert by_key["a2"].first_display == STORIES["a2"][1].encode()
    assert by_key["a1"].authors == ("Ana O'Neill", "Søren Kovač")
    assert by_key["a1"].original_url == "https://news.example.org/a1"
    assert by_key["a1"].licence == "Licence of a1."
    assert by_key["a1"].date == datetime.date(2025, 7, 1)
    assert by_key["b1"].listed and all(a.listed for a in listed)
    assert by_key["pic"].item_type == b"I" and by_key["pic"].title is None
    assert by_key["pic"].first_seen == DAY1
    assert by_key["a5"].first_seen == DAY1 + DAY

    # Every article is stored byte for byte as the origin sends it.
    for article in listed:
        data = read_article(root, article)
        assert data + terminator(root, article) == hole.reply(article.selector)
    assert terminator(root, by_key["b2"]) == b".\r\n"

    # Filters.
    since = list_articles(root, config, since=datetime.date(2025, 7, 3), now=DAY1 + 3 * DAY)
    assert keys_of(since) == ["pic", "b3", "a5", "a4", "b2", "a3"]
    only_beta = list_articles(root, config, feed="beta", now=DAY1 + 3 * DAY)
    assert keys_of(only_beta) == ["b3", "b2", "b1"]
    with pytest.raises(ConfigError):
        list_articles(root, config, feed="gamma")

    # Read by id and by URL.
    a3 = by_key["a3"]
    assert find_article(root, str(a3.id)) == a3
    assert find_article(root, a3.url) == a3
    assert a3.url == f"gopher://127.0.0.1:{port}/0/feeds/alpha/a3"
    with pytest.raises(ConfigError):
        find_article(root, "99999")
    with pytest.raises(ConfigError):
        find_article(root, "gopher://127.0.0.1:1/0/nothing")

    check_published(root, config, listed)
    with Store.open(root, create=False) as store:
        assert not store.verify().problems


async def test_removed_article_stays_listed(tmp_path: Path) -> None:
    hole = make_hole()
    root = tmp_path / "mirror"
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            port = await nursery.start(serve_hole, hole)
            config = make_config(root, port)
            await update_feeds(root, config, ["beta"], now=DAY1)
            set_feed(hole, "beta", ["b2"])
            hole.remove(sel("beta", "b1"))  # gone from the origin too
            gone = await update_feeds(root, config, ["beta"], now=DAY1 + DAY)
            nursery.cancel_scope.cancel()
    assert gone[0].complete and gone[0].new == () and gone[0].listed == 1
    listed = list_articles(root, config, feed="beta", now=DAY1 + DAY)
    assert keys_of(listed) == ["b2", "b1"]
    b1 = listed[1]
    assert not b1.listed
    assert read_article(root, b1) == story("b1")  # still readable from the mirror


async def test_read_while_the_store_is_busy_and_after_a_refresh(tmp_path: Path) -> None:
    hole = make_hole()
    root = tmp_path / "mirror"
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            port = await nursery.start(serve_hole, hole)
            config = make_config(root, port)
            await update_feeds(root, config, ["beta"], now=DAY1)
            [b2, b1] = list_articles(root, config, now=DAY1)

            # Another process (here: another open) holds the store: reading still works.
            with Store.open(root, create=False):
                assert read_article(root, b1) == story("b1")

            # The origin edits b1; `mirror --refresh` fetches it again.
            edited = story("b1").replace(b"Beta one:", b"Beta one (updated):")
            hole.add(sel("beta", "b1"), edited)
            await mirror(root, [config.feeds[1].url], CrawlSettings(delay=0.0, refresh=True))
            assert read_article(root, b1) == edited  # the stored bytes, not the recorded ones
            again = await update_feeds(root, config, ["beta"], now=DAY1 + DAY)
            nursery.cancel_scope.cancel()
    assert again[0].new == ()  # an edited body is not a new article
    now = find_article(root, str(b1.id))
    assert now.title == "Beta one (updated): Kåsvik returns to the winter festival"
    assert now.updated == DAY1 + DAY and now.first_seen == DAY1
    assert now.display_title == b1.display_title  # the menu's title did not change

    # A damaged copy is refused, not printed.
    (root / b2.path).write_bytes(b"garbage")
    with pytest.raises(StoreError, match="does not match"):
        read_article(root, b2)


def check_published(root: Path, config: Config, listed: Sequence[Article]) -> None:
    """atom/*.xml are valid and link right; latest/gophermap lists ``listed``."""
    alpha_xml = (root / "atom" / "alpha.xml").read_bytes()
    alpha = check_atom(alpha_xml)
    assert alpha.findtext("atom:title", namespaces=NS) == "Alpha News"
    assert alpha.findtext("atom:id", namespaces=NS) == format_url(config.feeds[0].url)
    entries = alpha.findall("atom:entry", NS)
    alpha_listed = [a for a in listed if a.feed == "alpha"]
    assert [e.findtext("atom:id", namespaces=NS) for e in entries] == [a.url for a in alpha_listed]
    for entry, article in zip(entries, alpha_listed, strict=True):
        links = {link.get("rel"): link.get("href") for link in entry.findall("atom:link", NS)}
        assert links["via"] == article.url
        # The mirrored copy, relative to ROOT/atom/: resolves to the stored file.
        copy = (root / "atom" / unquote(links["related"])).resolve()
        assert copy == (root / article.path).resolve() and copy.is_file()
        if article.item_type == TEXT:
            assert links["alternate"] == article.original_url
            assert entry.findtext("atom:rights", namespaces=NS) == article.licence
            assert "First paragraph of" in (entry.findtext("atom:content", namespaces=NS) or "")
        assert entry.findtext("atom:title", namespaces=NS) == article.display_title
    parsed = feedparser.parse(alpha_xml)
    assert parsed.entries[1].authors[0]["name"] == "Ana O'Neill"

    everything = check_atom((root / "atom" / "all.xml").read_bytes())
    all_ids = [e.findtext("atom:id", namespaces=NS) for e in everything.findall("atom:entry", NS)]
    assert all_ids == [a.url for a in listed]
    assert check_atom((root / "atom" / "beta.xml").read_bytes()) is not None

    # latest/gophermap: date headings, newest first, links to the mirrored copies.
    menu = parse_menu((root / "latest" / "gophermap").read_bytes())
    links = [item for item in menu.items if not item.is_info]
    assert [item.selector for item in links] == [a.mirror_selector for a in listed]
    titles = {f.name: f.title or f.name for f in config.feeds}
    assert [item.text() for item in links] == [
        f"{a.display_title} ({titles[a.feed]})" for a in listed
    ]
    assert [item.type for item in links] == [a.item_type for a in listed]
    for item in links:
        assert item.selector is not None
        assert (root / item.selector.decode()[1:]).is_file()
    headings = [i.text() for i in menu.items if i.is_info and i.text().startswith("--- ")]
    assert headings == [
        "--- 2025-07-10 ---", "--- 2025-07-06 ---", "--- 2025-07-05 ---", "--- 2025-07-04 ---",
        "--- 2025-07-03 ---", "--- 2025-07-02 ---", "--- 2025-07-01 ---",
    ]  # fmt: skip


async def test_retention_limits_listings_not_the_store(tmp_path: Path) -> None:
    hole = make_hole()
    set_feed(hole, "alpha", ["a5", "a4", "a3", "a2", "a1"])
    root = tmp_path / "mirror"
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            port = await nursery.start(serve_hole, hole)
            config = make_config(root, port, max_items=2)
            await update_feeds(root, config, ["alpha"], now=DAY1)
            set_feed(hole, "beta", ["b3"])
            await update_feeds(root, config, ["beta"], now=DAY1 + 10 * DAY)
            nursery.cancel_scope.cancel()
    shown = list_articles(root, config, now=DAY1 + 10 * DAY)
    assert keys_of(shown) == ["b3", "a5", "a4"]  # alpha: its newest two only
    alpha = check_atom((root / "atom" / "alpha.xml").read_bytes())
    assert len(alpha.findall("atom:entry", NS)) == 2
    latest = parse_menu((root / "latest" / "gophermap").read_bytes())
    assert len([i for i in latest.items if not i.is_info]) == 3
    # Older articles are still stored and readable by id.
    state = FeedState.open(root, create=False)
    assert state is not None
    with state:
        everything = state.articles(["alpha"])
    assert len(everything) == 5
    a1 = next(a for a in everything if a.selector.endswith(b"/a1"))
    assert read_article(root, find_article(root, str(a1.id))) == story("a1")

    # max_age: alpha's articles were first seen 10 days before beta's.
    aged = make_config(root, config.feeds[0].url.port, max_age_days=5.0)
    assert keys_of(list_articles(root, aged, now=DAY1 + 10 * DAY)) == ["b3"]
    assert keys_of(list_articles(root, aged, now=DAY1 + 4 * DAY)) == [
        "b3", "a5", "a4", "a3", "a2", "a1"
    ]  # fmt: skip


def test_feed_links_keep_only_articles_of_the_feed_server() -> None:
    url = GopherURL("127.0.0.1", 7000, MENU, b"/f")
    body = (
        b"iHeading\t\terror.host\t1\r\n"
        b"0One\t/f/1\t127.0.0.1\t7000\r\n"
        b"0One again\t/f/1\t127.0.0.1\t7000\r\n"  # a repeat: one article
        b"9Binary\t/f/2.bin\t127.0.0.1\t7000\t+\r\n"
        b"1A menu\t/f/sub\t127.0.0.1\t7000\r\n"
        b"0Other port\t/f/3\t127.0.0.1\t7001\r\n"
        b"0Other host\t/f/4\texample.org\t7000\r\n"
        b"7Search\t/f/s\t127.0.0.1\t7000\r\n"
        b"hWeb\tURL:http://x/\t127.0.0.1\t7000\r\n"
        b"0Broken line\r\n"
        b"0Bad port\t/f/5\t127.0.0.1\tnope\r\n"
    )
    links = feed_links(body, url)
    assert [(link.selector, link.item_type, link.display) for link in links] == [
        (b"/f/1", b"0", b"One"),
        (b"/f/2.bin", b"9", b"Binary"),
    ]


def an_article(**changes: object) -> Article:
    values: dict[str, object] = dict(
        id=1, feed="f", host="h", port=70, selector=b"/s", item_type=b"0", url="gopher://h:70/0/s",
        path="h_70/s", display=b"Menu title", first_display=b"Menu title", title="Own title",
        authors=(), date=None, date_text=None, original_url=None, licence=None, publisher=None,
        sha256="", size=0, first_seen=DAY1, updated=DAY1, last_listed=DAY1, listed=True,
    )  # fmt: skip
    values.update(changes)
    return Article(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("date_text", "seen", "label", "filed"),
    [
        ("2025-07-03", "2025-07-10", "2025-07-03", "2025-07-03"),
        ("2025-07", "2025-07-10", "2025-07", "2025-07-10"),  # followed live: the day seen
        ("July 2025", "2025-07-10", "2025-07", "2025-07-10"),
        ("2025-06", "2025-07-10", "2025-06", "2025-06-30"),  # older: the month's last day
        ("2025-08", "2025-07-10", "2025-08", "2025-08-01"),  # seen "before" it: its first
        ("2025", "2025-07-10", "2025", "2025-07-10"),
        (None, "2025-07-10", "~2025-07-10", "2025-07-10"),
    ],
)
def test_dates_are_shown_as_precise_as_the_article_gives_them(
    date_text: str | None, seen: str, label: str, filed: str
) -> None:
    from gophermirror.article import parse_date

    first_seen = datetime.datetime.fromisoformat(seen + "T12:00+00:00").timestamp()
    article = an_article(
        date=parse_date(date_text) if date_text else None, date_text=date_text,
        first_seen=first_seen,
    )  # fmt: skip
    assert article.date_label == label
    assert article.sort_date == datetime.date.fromisoformat(filed)


def test_titles_fall_back_from_menu_to_article_to_selector() -> None:
    assert an_article().display_title == "Menu title"
    assert an_article(display=b"  ").display_title == "Own title"
    assert an_article(display=b"", title=None).display_title == "/s"
    assert an_article(display=b"caf\xe9").display_title == "café"  # latin-1 menus read too


def test_backoff_grows_caps_and_jitters() -> None:
    rng = random.Random(7)
    settings = WatchSettings()
    plain = WatchSettings(jitter=0.0)
    assert next_delay(900, 0, plain, rng) == 900
    assert [next_delay(900, n, plain, rng) for n in range(1, 9)] == [
        60, 120, 240, 480, 960, 1920, 3600, 3600,
    ]  # fmt: skip
    # A short interval starts retries at the interval; a long one caps at itself.
    assert next_delay(15, 1, plain, rng) == 15
    assert next_delay(86400, 30, plain, rng) == 86400
    assert next_delay(86400, 10_000, plain, rng) == 86400
    delays = [next_delay(1000, 0, settings, rng) for _ in range(500)]
    assert 900 <= min(delays) < 920 and 1080 < max(delays) <= 1100


# --------------------------------------------------------------------------
# A feed whose server is down
# --------------------------------------------------------------------------


def dead_port() -> int:
    """A loopback port nothing listens on (bound, then closed)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


async def test_a_failing_feed_does_not_stop_the_others(tmp_path: Path) -> None:
    hole = make_hole()
    root = tmp_path / "mirror"
    down = Feed("down", GopherURL("127.0.0.1", dead_port(), MENU, b"/feeds/gone"))
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            port = await nursery.start(serve_hole, hole)
            base = make_config(root, port)
            config = Config(root=root, politeness=POLITE, feeds=(down, *base.feeds))
            updates = await update_feeds(root, config, now=DAY1)
            nursery.cancel_scope.cancel()
    assert [u.name for u in updates] == ["down", "alpha", "beta"]
    assert not updates[0].ok and "ConnectError" in (updates[0].error or "")
    assert updates[1].complete and updates[2].complete
    assert new_keys(updates) == ["pic", "a3", "a2", "a1", "b2", "b1"]
    assert check_atom((root / "atom" / "down.xml").read_bytes()) is not None


# --------------------------------------------------------------------------
# The command line, in a subprocess
# --------------------------------------------------------------------------


def write_config(path: Path, root: Path, feeds: dict[str, str], **extra: str) -> Path:
    lines = [f'root = "{root}"', "", "[politeness]", "delay = 0", "retries = 0", ""]
    for name, url in feeds.items():
        lines += ["[[feed]]", f'name = "{name}"', f'url = "{url}"']
        lines += [f"{key} = {value}" for key, value in extra.items()]
        lines.append("")
    path.write_text("\n".join(lines))
    return path


async def gophermirror(*args: str) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return await trio.run_process(
        [sys.executable, "-m", "gophermirror", *args],
        capture_stdout=True,
        capture_stderr=True,
        check=False,
        env=env,
    )


async def test_cli_update_list_read(tmp_path: Path) -> None:
    hole = make_hole()
    root = tmp_path / "mirror"
    with trio.fail_after(90):
        async with trio.open_nursery() as nursery:
            port = await nursery.start(serve_hole, hole)
            feeds = {
                "alpha": f"gopher://127.0.0.1:{port}/1/feeds/alpha",
                "beta": f"gopher://127.0.0.1:{port}/1/feeds/beta",
            }
            config = write_config(tmp_path / "mirror.toml", root, feeds)
            done = await gophermirror("feed", "update", "--config", str(config), "--json")
            assert done.returncode == 0, done.stderr
            document = json.loads(done.stdout)  # one JSON document, nothing else
            assert document["ok"] is True and document["new"] == 6
            assert [f["name"] for f in document["feeds"]] == ["alpha", "beta"]
            assert [a["selector"] for a in document["feeds"][1]["new"]] == [
                "/feeds/beta/b2", "/feeds/beta/b1"
            ]  # fmt: skip

            set_feed(hole, "beta", ["b3", "b2", "b1"])
            text = await gophermirror("feed", "update", "beta", "--config", str(config))
            assert text.returncode == 0, text.stderr
            assert text.stdout.decode().splitlines() == [
                f"NEW  2025-07-06  beta  {STORIES['b3'][1]}"
            ]
            again = await gophermirror("feed", "update", "--config", str(config), "--quiet")
            assert (again.returncode, again.stdout, again.stderr) == (0, b"", b"")

            unknown = await gophermirror("feed", "update", "nope", "--config", str(config))
            assert unknown.returncode == 2 and b"nope" in unknown.stderr
            nursery.cancel_scope.cancel()

    listed = await gophermirror("feed", "list", "--config", str(config), "--json")
    assert listed.returncode == 0, listed.stderr
    articles = json.loads(listed.stdout)["articles"]
    assert [a["selector"].rsplit("/", 1)[1] for a in articles] == [
        "pic", "b3", "b2", "a3", "a2", "b1", "a1"
    ]  # fmt: skip
    since = await gophermirror("feed", "list", "--config", str(config), "--since", "2025-07-03")
    assert since.returncode == 0
    assert len(since.stdout.decode().splitlines()) == 4
    bad = await gophermirror("feed", "list", "--config", str(config), "--since", "July")
    assert bad.returncode == 2

    b2 = next(a for a in articles if a["selector"].endswith("/b2"))
    read = await gophermirror("feed", "read", str(b2["id"]), "--config", str(config))
    assert read.returncode == 0
    assert read.stdout + b".\r\n" == hole.reply(b"/feeds/beta/b2")  # body as stored
    by_url = await gophermirror("feed", "read", b2["url"], "--config", str(config), "--json")
    document = json.loads(by_url.stdout)
    assert document["id"] == b2["id"] and document["text"].startswith("(C) Example Gazette")
    missing = await gophermirror("feed", "read", "4242", "--config", str(config))
    assert missing.returncode == 2


async def test_cli_update_exits_1_when_a_feed_fails(tmp_path: Path) -> None:
    hole = make_hole()
    root = tmp_path / "mirror"
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            port = await nursery.start(serve_hole, hole)
            feeds = {
                "down": f"gopher://127.0.0.1:{dead_port()}/1/feeds/gone",
                "beta": f"gopher://127.0.0.1:{port}/1/feeds/beta",
            }
            config = write_config(tmp_path / "mirror.toml", root, feeds)
            done = await gophermirror("feed", "update", "--config", str(config), "--json")
            nursery.cancel_scope.cancel()
    assert done.returncode == 1
    document = json.loads(done.stdout)
    assert document["ok"] is False
    down, beta = document["feeds"]
    assert down["ok"] is False and "ConnectError" in down["error"]
    assert beta["ok"] is True and len(beta["new"]) == 2


# --------------------------------------------------------------------------
# watch
# --------------------------------------------------------------------------


async def test_watch_survives_a_long_outage(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    hole = make_hole()
    root = tmp_path / "mirror"
    checks: list[tuple[float, WatchCheck]] = []
    changed = trio.Event()

    def on_check(check: WatchCheck) -> None:
        checks.append((trio.current_time(), check))
        changed.set()

    async def until(predicate: Callable[[], bool]) -> None:
        nonlocal changed
        while not predicate():
            changed = trio.Event()
            await changed.wait()

    wall = [DAY1]
    with trio.fail_after(7 * 24 * 3600):  # simulated seconds
        async with trio.open_nursery() as nursery:
            servers: list[trio.CancelScope] = []

            async def serve(
                port: int = 0, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED
            ) -> None:
                with trio.CancelScope() as scope:
                    servers.append(scope)
                    await serve_hole(hole, port=port, task_status=task_status)

            port = await nursery.start(serve)
            config = make_config(root, port, interval=900.0)
            config = Config(root=root, politeness=POLITE, feeds=config.feeds[:1])
            watcher = trio.CancelScope()

            async def run_watch() -> None:
                with watcher:
                    await watch(root, config, rng=random.Random(1), wall=lambda: wall[0],
                                on_check=on_check, max_checks=200)  # fmt: skip

            nursery.start_soon(run_watch)
            await until(lambda: len(checks) == 1)
            assert keys_of(checks[0][1].update.new) == ["pic", "a3", "a2", "a1"]
            assert checks[0][1].failures == 0 and 810 <= checks[0][1].delay <= 990

            servers[-1].cancel()  # the origin goes away for hours
            set_feed(hole, "alpha", ["a5", "a4", "a3", "a2", "a1", "pic"])
            down_at = trio.current_time()
            await until(lambda: trio.current_time() - down_at > 5 * 3600)
            failed = [c for _, c in checks[1:]]
            assert failed and all(not c.update.ok for c in failed)
            assert [c.failures for c in failed] == list(range(1, len(failed) + 1))
            delays = [c.delay for c in failed]
            # Exponential from a minute, capped at an hour, each within ±10 %.
            for n, delay in enumerate(delays, 1):
                base = min(3600.0, 60.0 * 2 ** (n - 1))
                assert 0.9 * base <= delay <= 1.1 * base
            assert max(delays) > 3000

            wall[0] = DAY1 + DAY
            await nursery.start(serve, port)  # back, on the same port
            back_at = trio.current_time()
            await until(lambda: checks[-1][1].update.ok)
            recovered = checks[-1][1]
            assert checks[-1][0] - back_at <= 1.1 * 3600
            assert keys_of(recovered.update.new) == ["a5", "a4"]
            assert recovered.failures == 0 and 810 <= recovered.delay <= 990
            count = len(checks)
            await until(lambda: len(checks) == count + 2)
            assert all(c.update.ok and not c.update.new for _, c in checks[count:])
            watcher.cancel()
            servers[-1].cancel()
    everything = new_keys([c.update for _, c in checks])
    assert sorted(everything) == ["a1", "a2", "a3", "a4", "a5", "pic"]
    with Store.open(root, create=False) as store:
        assert not store.verify().problems


async def test_watch_stops_after_max_checks(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    root = tmp_path / "mirror"
    down = Feed("down", GopherURL("127.0.0.1", dead_port(), MENU, b"/x"), interval=60.0)
    config = Config(root=root, politeness=POLITE, feeds=(down,))
    seen: list[WatchCheck] = []
    with trio.fail_after(24 * 3600):
        count = await watch(root, config, on_check=seen.append, max_checks=5)
    assert count == 5 and [c.failures for c in seen] == [1, 2, 3, 4, 5]


async def slow_hole_server(
    hole: MemoryHole, delay: float, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED
) -> None:
    """Like ``serve_hole`` but each reply waits ``delay`` seconds first."""

    async def handler(stream: trio.SocketStream) -> None:
        async with stream:
            data = b""
            with trio.move_on_after(10):
                while b"\n" not in data:
                    chunk = await stream.receive_some(4096)
                    if not chunk:
                        break
                    data += chunk
            selector, _, _ = decode_request(data.split(b"\n", 1)[0] + b"\n")
            hole.requests.append(selector)
            await trio.sleep(delay)
            with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                await stream.send_all(hole.reply(selector))

    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]
    hole.bind("127.0.0.1", port)
    async with trio.open_nursery() as nursery:
        await nursery.start(trio.serve_listeners, handler, listeners)
        task_status.started(port)


async def read_all(stream: trio.abc.ReceiveStream) -> bytes:
    chunks = []
    while chunk := await stream.receive_some(1 << 16):
        chunks.append(chunk)
    return b"".join(chunks)


async def test_sigterm_during_watch_stops_cleanly(tmp_path: Path) -> None:
    hole = make_hole()
    many = [f"n{i}" for i in range(12)]
    for key in many:
        hole.add(sel("alpha", key), story(key))
    set_feed(hole, "alpha", ["a3", "a2", "a1", *many])
    root = tmp_path / "mirror"
    with trio.fail_after(120):
        async with trio.open_nursery() as nursery:
            port = await nursery.start(slow_hole_server, hole, 0.15)
            feeds = {"alpha": f"gopher://127.0.0.1:{port}/1/feeds/alpha"}
            config = write_config(tmp_path / "mirror.toml", root, feeds, interval='"1h"')
            process = await trio.lowlevel.open_process(
                [sys.executable, "-m", "gophermirror", "feed", "watch", "--config", str(config)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
            try:
                # Stop it in the middle of its first update: some articles fetched.
                while sum(s.startswith(b"/feeds/alpha/") for s in hole.requests) < 4:
                    await trio.sleep(0.02)
                    assert process.poll() is None
                sent = time.monotonic()
                process.send_signal(signal.SIGTERM)
                with trio.fail_after(10):
                    status = await process.wait()
                took = time.monotonic() - sent
            finally:
                if process.returncode is None:
                    process.kill()
                    await process.wait()
            assert process.stdout is not None and process.stderr is not None
            out = await read_all(process.stdout)
            err = await read_all(process.stderr)
            assert status == 0, err
            assert took < 5
            assert b"stopped (SIGTERM)" in err
            assert b"Traceback" not in err
            with Store.open(root, create=False) as store:
                assert not store.verify().problems
                stored = [e for e in store.entries() if e.kind == "file" and e.sha256]
                # The stop came mid-update: some articles stored and committed, not all.
                assert 0 < len(stored) < 3 + len(many)
                for entry in stored:
                    assert store.read_body(entry) + entry.terminator == hole.reply(entry.selector)
            # Nothing was recorded half-way: the next update reports every article once.
            cfg = make_config(root, port)
            cfg = Config(root=root, politeness=POLITE, feeds=cfg.feeds[:1])
            updates = await update_feeds(root, cfg, now=DAY1)
            nursery.cancel_scope.cancel()
    # The interrupted update recorded nothing; the next one reports every article once.
    assert out.count(b"NEW ") == 0
    assert len(updates[0].new) == 3 + len(many)
