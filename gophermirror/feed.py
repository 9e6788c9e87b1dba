"""Following gopher feeds: what is new, listings, reading, publishing, watching.

Owns: ``update_feeds`` (mirror each feed menu at depth 0 into the store,
then record its articles in the feed state and report the new ones),
``list_articles``, ``find_article``/``read_article``, ``publish`` (Atom
documents and the ``latest`` menu, written through ``Store.write_aux``) and
``watch`` (each feed on its own interval, with jitter and backoff).
Must not touch: argument parsing and printing (feed_cli.py), the store's
layout (store.py), how menus are fetched (crawler.py through mirror.py).

Consistency: the store commits what a mirror run stored even when the run
is cancelled; the feed state is written in one transaction per feed, only
after its mirror run finished.  A stop in between leaves articles stored but
not yet recorded: the next update reports them, once.  Publishing is
synchronous (no checkpoint inside), so a cancel never cuts it in half.
docs/feeds.md tells the whole story.
"""

from __future__ import annotations

import datetime
import hashlib
import math
import random
import signal
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Final

import attrs
import trio

from . import feed_publish, maps
from .config import Config, Feed
from .crawler import CrawlReport, CrawlSettings
from .errors import BadURL, ConfigError, GopherError, StoreError
from .feed_state import (
    Article,
    FeedLink,
    FeedState,
    StoredBody,
    feed_links,
    newest_first,
    retained,
)
from .mirror import mirror, settings_from_config
from .protocol import MENU, GopherURL, parse_url
from .store import Store

__all__ = [
    "Article",
    "FeedUpdate",
    "WatchCheck",
    "WatchSettings",
    "feed_settings",
    "find_article",
    "list_articles",
    "next_delay",
    "publish",
    "read_article",
    "select_feeds",
    "update_feeds",
    "watch",
    "watch_until_signalled",
]


@attrs.frozen
class FeedUpdate:
    """What one check of one feed found."""

    name: str
    """The feed's name."""
    url: str
    """The feed menu's gopher URL."""
    new: tuple[Article, ...] = ()
    """Articles seen for the first time, newest first."""
    listed: int = 0
    """Article links in the menu now."""
    waiting: int = 0
    """Listed links not stored yet (their download failed): tried again next time."""
    error: str | None = None
    """Why the feed could not be checked (menu not fetched, store busy); None if it was."""
    warnings: tuple[str, ...] = ()
    """Things that went wrong without stopping the check (an article that failed)."""

    @property
    def ok(self) -> bool:
        """The menu was fetched and its articles recorded."""
        return self.error is None

    @property
    def complete(self) -> bool:
        """Checked, and nothing at all went wrong."""
        return self.error is None and not self.warnings

    def as_json(self) -> dict[str, Any]:
        """A JSON-ready description."""
        return {
            "name": self.name,
            "url": self.url,
            "ok": self.ok,
            "error": self.error,
            "warnings": list(self.warnings),
            "listed": self.listed,
            "waiting": self.waiting,
            "new": [a.as_json() for a in self.new],
        }


# --------------------------------------------------------------------------
# Which feeds, and how to mirror one
# --------------------------------------------------------------------------


def select_feeds(config: Config, names: Iterable[str] | None = None) -> list[Feed]:
    """The feeds named (all when None or empty); ``ConfigError`` for an unknown name,
    no feeds at all, or a feed URL that is not a menu."""
    if not config.feeds:
        raise ConfigError("no feeds: add a [[feed]] table (name, url) to the config", config.source)
    wanted = list(dict.fromkeys(names or ()))
    feeds = [config.feed(name) for name in wanted] if wanted else list(config.feeds)
    for feed in feeds:
        if feed.url.item_type != MENU:
            raise ConfigError(
                f"feed {feed.name!r}: {feed.url} is not a menu (a feed URL has type 1)",
                config.source,
            )
    return feeds


def feed_settings(config: Config) -> CrawlSettings:
    """How a feed menu is mirrored: depth 0 (the menu and the documents it
    links to on its server), the config's politeness, no include/exclude."""
    return settings_from_config(config, depth=0, include=(), exclude=(), follow_hosts=False)


def _same_item(text: str, url: GopherURL) -> bool:
    try:
        other = parse_url(text)
    except BadURL:
        return False
    return (other.host, other.port, other.selector, other.item_type) == (
        url.host,
        url.port,
        url.selector,
        url.item_type,
    )


def _failures(report: CrawlReport, feed_url: GopherURL) -> tuple[str | None, list[str]]:
    """(why the menu failed, or None; one line per article that failed)."""
    menu_error = None
    others = []
    for error in report.errors:
        line = f"{error.url}: {error.error}: {error.message}"
        if _same_item(error.url, feed_url):
            menu_error = f"{error.error}: {error.message}"
        else:
            others.append(line)
    return menu_error, others


def _stored_lookup(store: Store, feed_url: GopherURL) -> Callable[[FeedLink], StoredBody | None]:
    def lookup(link: FeedLink) -> StoredBody | None:
        entry = store.get(feed_url.host, feed_url.port, link.selector, "file")
        if entry is None or not entry.sha256:
            return None
        return StoredBody(entry.path, entry.sha256, entry.size, lambda: store.read_body(entry))

    return lookup


# --------------------------------------------------------------------------
# update
# --------------------------------------------------------------------------


async def update_feeds(
    root: Path,
    config: Config,
    names: Iterable[str] | None = None,
    *,
    now: float | None = None,
    advertise: tuple[str, int] | None = None,
    durable: bool = True,
) -> list[FeedUpdate]:
    """Check ``names`` (all feeds when None), one after the other, then publish.

    A feed that fails is reported in its ``FeedUpdate`` and the others go
    on.  ``now`` (Unix time) stamps first sightings and the published files;
    ``advertise`` is the host:port the Atom links to mirrored copies use.
    Raises ``ConfigError`` for unknown names before anything is fetched.
    """
    feeds = select_feeds(config, names)
    results = []
    for feed in feeds:
        stamp = time.time() if now is None else now
        results.append(await _update_one(root, config, feed, stamp, durable))
    try:
        publish(root, config, now=time.time() if now is None else now, advertise=advertise)
    except GopherError as exc:
        warning = f"publishing failed: {exc}"
        results = [attrs.evolve(r, warnings=(*r.warnings, warning)) for r in results]
    return results


async def _update_one(
    root: Path, config: Config, feed: Feed, now: float, durable: bool
) -> FeedUpdate:
    url = feed.url
    base = FeedUpdate(name=feed.name, url=str(url))
    started = time.time()
    try:
        report = await mirror(root, [url], feed_settings(config), durable=durable)
    except GopherError as exc:
        return attrs.evolve(base, error=str(exc))
    menu_error, article_errors = _failures(report, url)
    try:
        with Store.open(root, durable=durable) as store:
            entry = store.get(url.host, url.port, url.selector, "menu")
            if menu_error is None and (entry is None or not entry.sha256):
                menu_error = "the feed menu was not fetched (robots.txt?)"
            elif menu_error is None and entry is not None and entry.last_fetched < started:
                menu_error = "the feed menu was not fetched this time (robots.txt?)"
            if menu_error is not None or entry is None:
                return attrs.evolve(base, error=menu_error, warnings=tuple(article_errors))
            links = feed_links(store.read_body(entry), url)
            with _open_state(root) as state:
                new, waiting = state.record_check(
                    feed.name, url, links, _stored_lookup(store, url), now=now
                )
    except GopherError as exc:
        return attrs.evolve(base, error=str(exc), warnings=tuple(article_errors))
    return attrs.evolve(
        base,
        new=tuple(newest_first(new)),
        listed=len(links),
        waiting=waiting,
        warnings=tuple(article_errors),
    )


def _open_state(root: Path) -> FeedState:
    state = FeedState.open(root, create=True)
    if state is None:
        raise StoreError("not a gophermirror store (no .gophermirror/)", root)
    return state


# --------------------------------------------------------------------------
# listings
# --------------------------------------------------------------------------


def visible_articles(state: FeedState, feeds: Sequence[Feed], *, now: float) -> list[Article]:
    """Every feed's articles after its retention, merged newest first."""
    by_feed: dict[str, list[Article]] = {f.name: [] for f in feeds}
    for article in state.articles(by_feed):
        by_feed[article.feed].append(article)
    shown: list[Article] = []
    for feed in feeds:
        shown += retained(
            by_feed[feed.name], max_items=feed.max_items, max_age_days=feed.max_age_days, now=now
        )
    return newest_first(shown)


def parse_since(text: str) -> datetime.date:
    """``YYYY-MM-DD`` (or ``YYYY-MM``: its 1st day); ``ConfigError`` otherwise."""
    value = text.strip()
    try:
        if len(value) == 7:
            return datetime.date.fromisoformat(value + "-01")
        return datetime.date.fromisoformat(value)
    except ValueError:
        raise ConfigError(f"--since: not a date {text!r} (use YYYY-MM-DD)") from None


def list_articles(
    root: Path,
    config: Config,
    *,
    feed: str | None = None,
    since: datetime.date | None = None,
    now: float | None = None,
) -> list[Article]:
    """Articles of the configured feeds (or one), after retention, newest first;
    ``since`` keeps those dated (or, undated, first seen) on or after it."""
    feeds = select_feeds(config, [feed] if feed else None)
    state = FeedState.open(root, create=False)
    if state is None:
        return []
    with state:
        shown = visible_articles(state, feeds, now=time.time() if now is None else now)
    if since is not None:
        shown = [a for a in shown if a.sort_date >= since]
    return shown


def find_article(root: Path, target: str) -> Article:
    """The article with id ``target`` or at the origin URL ``target`` (any feed,
    retention ignored); ``ConfigError`` when there is none."""
    state = FeedState.open(root, create=False)
    found: Article | None = None
    if state is not None:
        with state:
            text = target.strip()
            if text.isdigit():
                found = state.article(int(text))
            else:
                try:
                    url = parse_url(text)
                except BadURL as exc:
                    raise ConfigError(f"not an article id or gopher URL: {exc.message}") from None
                found = state.find(url.host, url.port, url.selector)
    if found is None:
        raise ConfigError(f"no article {target!r} (see `gophermirror feed list`)")
    return found


_BUSY_TRIES: Final = 20
"""Tries (0.1 s apart) to open a store another process holds, in ``read_article``."""


def read_article(root: Path, article: Article) -> bytes:
    """The stored body of ``article``, exactly as the origin sent it (framing apart).

    The file is read directly and checked against the sha256 the feed state
    recorded, so a running ``feed watch`` or ``mirror`` (which holds the
    store) is no obstacle.  If the body changed since (a ``mirror
    --refresh``), it is read through the store and checked against the
    manifest.  ``StoreError`` when it is missing or damaged.
    """
    data = _read_file(root, article.path, article.url)
    if data is not None and hashlib.sha256(data).hexdigest() == article.sha256:
        return data
    for attempt in range(_BUSY_TRIES):
        try:
            with Store.open(root, create=False, durable=False) as store:
                entry = store.get(article.host, article.port, article.selector, "file")
                if entry is None or not entry.sha256:
                    raise StoreError("the store has no body for this article", article.url)
                data = store.read_body(entry)
                if hashlib.sha256(data).hexdigest() != entry.sha256:
                    raise StoreError(
                        f"{entry.path} does not match the manifest (run gophermirror verify)",
                        article.url,
                    )
                return data
        except StoreError as exc:
            if "in use" not in exc.message or attempt == _BUSY_TRIES - 1:
                raise
            time.sleep(0.1)
    raise AssertionError("unreachable")  # pragma: no cover


def _read_file(root: Path, path: str, url: str) -> bytes | None:
    try:
        return (Path(root) / path).read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StoreError(f"cannot read {path}: {exc.strerror}", url) from exc


# --------------------------------------------------------------------------
# publishing
# --------------------------------------------------------------------------


def publish(
    root: Path,
    config: Config,
    *,
    now: float | None = None,
    advertise: tuple[str, int] | None = None,
    durable: bool = True,
) -> list[str]:
    """Write ``atom/NAME.xml`` per feed, ``atom/all.xml`` and ``latest/gophermap``.

    Each file is replaced atomically and committed with the store.  Returns
    the paths written, relative to ROOT.
    """
    moment = time.time() if now is None else now
    advertise = advertise or config.advertise
    state = FeedState.open(root, create=True)
    if state is None:
        return []
    written = []
    with state, Store.open(root, durable=durable) as store:
        feed_id = state.value("feed_id") or "urn:gophermirror:all"

        def read_body(article: Article) -> bytes | None:
            entry = store.get(article.host, article.port, article.selector, "file")
            if entry is None or not entry.sha256:
                return None
            try:
                return store.read_body(entry)
            except StoreError:
                return None

        every: list[Article] = []
        for feed in config.feeds:
            shown = visible_articles(state, [feed], now=moment)
            every += shown
            data = feed_publish.feed_document(
                feed, shown, read_body, now=moment, advertise=advertise
            )
            store.write_aux(feed_publish.atom_path(feed.name), data)
            written.append(feed_publish.atom_path(feed.name))
        every = feed_publish.unique_items(newest_first(every))
        data = feed_publish.all_document(feed_id, every, read_body, now=moment, advertise=advertise)
        store.write_aux(feed_publish.atom_path(feed_publish.ALL_FEEDS), data)
        written.append(feed_publish.atom_path(feed_publish.ALL_FEEDS))
        titles = {f.name: f.title or f.name for f in config.feeds}
        items = feed_publish.latest_items(every, titles, now=moment)
        maps.write_generated_menu(store, maps.LATEST_DIR, items)
        written.append(feed_publish.LATEST_MAP)
        maps.write_root_map(store)  # so that the root menu links latest and the feeds
        store.commit()
    return written


# --------------------------------------------------------------------------
# watch
# --------------------------------------------------------------------------


@attrs.frozen
class WatchSettings:
    """How ``watch`` spaces its checks."""

    jitter: float = 0.1
    """Each delay is moved at random by up to this fraction, either way."""
    first_retry: float = 60.0
    """Seconds before the first retry of a failed feed (at most its interval)."""
    max_backoff: float = 3600.0
    """Retries of a failing feed are never further apart than this, or than its
    interval when that is longer."""


def next_delay(
    interval: float, failures: int, settings: WatchSettings, rng: random.Random
) -> float:
    """Seconds until the next check of a feed after ``failures`` failures in a row.

    No failure: ``interval``.  Otherwise ``min(first_retry, interval) *
    2**(failures-1)``, capped at ``max(max_backoff, interval)``.  Then jitter.
    """
    if failures <= 0:
        base = interval
    else:
        start = min(settings.first_retry, interval)
        cap = max(settings.max_backoff, interval)
        base = cap if failures > 64 else min(cap, start * 2.0 ** (failures - 1))
    factor = 1.0 + rng.uniform(-settings.jitter, settings.jitter)
    return max(0.0, base * factor) if math.isfinite(base) else settings.max_backoff


@attrs.frozen
class WatchCheck:
    """One check made by ``watch``, handed to its ``on_check`` callback."""

    update: FeedUpdate
    """What the check found."""
    failures: int
    """Failures of this feed in a row, this one included (0 after a success)."""
    delay: float
    """Seconds until this feed's next check."""


async def watch(
    root: Path,
    config: Config,
    names: Iterable[str] | None = None,
    *,
    settings: WatchSettings = WatchSettings(),
    rng: random.Random | None = None,
    wall: Callable[[], float] = time.time,
    on_check: Callable[[WatchCheck], None] | None = None,
    max_checks: int | None = None,
    advertise: tuple[str, int] | None = None,
    durable: bool = True,
) -> int:
    """Check each feed on its own interval until cancelled (or ``max_checks``).

    Every feed is checked once at the start, then after its interval (with
    jitter); a feed whose menu fails is retried with exponential backoff,
    reset by a success.  Network and store errors never end the loop.  Time
    comes from trio's clock (so tests can use ``MockClock``); ``wall`` gives
    the Unix time that stamps what is found.  Returns the number of checks.
    """
    feeds = select_feeds(config, names)
    rng = rng or random.Random()
    order = {feed.name: index for index, feed in enumerate(feeds)}
    start = trio.current_time()
    due = {feed.name: start for feed in feeds}
    failures = {feed.name: 0 for feed in feeds}
    by_name = {feed.name: feed for feed in feeds}
    checks = 0
    while max_checks is None or checks < max_checks:
        name = min(due, key=lambda n: (due[n], order[n]))
        await trio.sleep_until(due[name])
        [update] = await update_feeds(
            root, config, [name], now=wall(), advertise=advertise, durable=durable
        )
        checks += 1
        failures[name] = 0 if update.ok else failures[name] + 1
        delay = next_delay(by_name[name].interval, failures[name], settings, rng)
        due[name] = trio.current_time() + delay
        if on_check is not None:
            on_check(WatchCheck(update, failures[name], delay))
    return checks


async def watch_until_signalled(
    root: Path,
    config: Config,
    names: Iterable[str] | None = None,
    *,
    signals: Sequence[int] = (signal.SIGINT, signal.SIGTERM),
    **options: Any,
) -> int | None:
    """``watch`` until one of ``signals`` arrives; returns that signal's number.

    The signal cancels the loop: a mirror run in progress stops and its store
    commits what it stored; nothing is left half-written.
    """
    with trio.open_signal_receiver(*signals) as received:
        caught: list[int] = []
        async with trio.open_nursery() as nursery:

            async def wait_for_signal() -> None:
                async for number in received:
                    caught.append(number)
                    nursery.cancel_scope.cancel()
                    return

            async def run() -> None:
                await watch(root, config, names, **options)
                nursery.cancel_scope.cancel()

            nursery.start_soon(wait_for_signal)
            nursery.start_soon(run)
    return caught[0] if caught else None
