"""The crawler: walk a hole's menus and bring every item into the store.

Owns: the scope (which links are followed), politeness per host (through
``politeness.HostGate``, robots.txt, caps.txt), the frontier, retries, and
the run's report.  One failing item never stops the crawl: it is recorded
with its URL and the walk goes on.  Must not touch: how bytes become files
(the store's) or gophermaps (the export layer's, reached through the
``on_menu`` hook).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import attrs
import trio

from . import client
from .errors import (
    BadMenuLine,
    ConnectError,
    ConnectionReset,
    GopherError,
    GopherTimeout,
    ServerError,
)
from .frontier import Frontier, Task
from .politeness import Caps, HostGate, Robots, parse_caps, parse_robots
from .protocol import (
    MENU,
    NON_FETCHABLE_TYPES,
    GopherURL,
    MenuLine,
    RawLine,
    parse_menu,
    url_for_item,
)
from .store import Entry, Store


@attrs.frozen
class CrawlSettings:
    """What to mirror and how politely."""

    depth: int | None = None
    """Menu levels followed below a start menu (0: the start menu and its documents)."""
    include: tuple[str, ...] = ()
    """Regular expressions (on the selector, latin-1 text); if any, one must match."""
    exclude: tuple[str, ...] = ()
    """Regular expressions that keep a selector out."""
    follow_hosts: bool = False
    """Follow links to other hosts (and ports)."""
    concurrency: int = 2
    """Connections at once to one host."""
    delay: float = 0.2
    """Least seconds between two request starts to one host."""
    global_concurrency: int = 16
    """Connections at once in all."""
    limits: client.Limits = client.DEFAULT_LIMITS
    """Timeouts and size cap per request."""
    robots: bool = True
    """Honour robots.txt."""
    refresh: bool = False
    """Download stored items again."""
    refresh_older_than: float | None = None
    """Download stored items fetched longer ago than this many seconds."""
    retries: int = 1
    """Extra tries after a network error."""
    max_items: int = 1_000_000
    """Stop queueing after this many URLs (a trap guard)."""
    max_selector: int = 1024
    """Longest selector followed (a trap guard)."""
    prune: bool = False
    """Delete items gone from the origin (default: keep, marked gone)."""
    commit_every: int = 500
    """Items per durable batch."""
    commit_seconds: float = 2.0
    """Longest time between two durable batches."""


@attrs.frozen
class ItemError:
    """One item that could not be mirrored (or one menu line that could not be followed)."""

    url: str
    """The item's URL (for a menu line: the menu's)."""
    error: str
    """The error's class name (``ConnectError``, ``ServerError``...)."""
    message: str
    """What went wrong, for a person."""


MAX_WARNINGS = 1000
"""Warnings kept in a report (bad menu lines beyond it are only counted)."""


@attrs.define(eq=False)
class CrawlReport:
    """Counts of a run, filled in as it goes."""

    menus: int = 0
    new: int = 0
    changed: int = 0
    unchanged: int = 0
    gone: int = 0
    failed: int = 0
    skipped_robots: int = 0
    requests: int = 0
    bytes: int = 0
    started: float = attrs.field(factory=time.monotonic)
    elapsed: float = 0.0
    truncated: bool = False
    """The item cap was reached: the mirror is incomplete."""
    errors: list[ItemError] = attrs.field(factory=list)
    bad_lines: int = 0
    """Menu lines that looked like links but cannot be followed (bad port, NUL...)."""
    warnings: list[ItemError] = attrs.field(factory=list)
    """Bad menu lines (with the menu's URL and line number) and robots.txt or
    caps.txt replies that could not be read; at most ``MAX_WARNINGS``."""
    servers: dict[str, str] = attrs.field(factory=dict)
    """host:port -> server software, from caps.txt."""

    @property
    def ok(self) -> bool:
        """True when nothing failed."""
        return self.failed == 0

    def as_dict(self) -> dict[str, object]:
        """A JSON-ready summary."""
        return {
            "ok": self.ok,
            "menus": self.menus,
            "items": {
                "new": self.new,
                "changed": self.changed,
                "unchanged": self.unchanged,
                "gone": self.gone,
                "failed": self.failed,
            },
            "skipped_robots": self.skipped_robots,
            "requests": self.requests,
            "bytes": self.bytes,
            "seconds": round(self.elapsed, 3),
            "truncated": self.truncated,
            "servers": dict(self.servers),
            "errors": [attrs.asdict(e) for e in self.errors],
            "bad_lines": self.bad_lines,
            "warnings": [attrs.asdict(w) for w in self.warnings],
        }


MenuHook = Callable[[Store, Entry, bool], None]
"""Called for each stored menu: (store, its row, whether its gophermap may have
changed: the menu is new or changed, or it links to items fetched in this run)."""
ProgressHook = Callable[[CrawlReport, str, str], None]
"""Called after each item: (report so far, URL, outcome)."""


def _under(selector: bytes, prefix: bytes) -> bool:
    if prefix in (b"", b"/"):
        return True
    if prefix.endswith(b"/"):
        return selector.startswith(prefix) or selector == prefix[:-1]
    return selector == prefix or selector.startswith(prefix + b"/")


@attrs.define(eq=False)
class Scope:
    """Which links a crawl follows.

    By default: the start URL's host and port, menus under the start menu's
    selector (on a ``/`` boundary), and the documents those menus link to on
    the same server even outside the prefix (as ``wget -p`` fetches a page's
    requisites).  Search, telnet, info, error and ``URL:`` links are never
    fetched; they stay in the mirrored menus.
    """

    starts: Sequence[GopherURL]
    settings: CrawlSettings
    _include: list[re.Pattern[str]] = attrs.field(init=False)
    _exclude: list[re.Pattern[str]] = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self._include = [re.compile(p) for p in self.settings.include]
        self._exclude = [re.compile(p) for p in self.settings.exclude]

    def follows(self, url: GopherURL, depth: int) -> bool:
        """Whether ``url``, found ``depth`` menu levels down, is fetched."""
        if url.item_type in NON_FETCHABLE_TYPES or url.selector[:4] in (b"URL:", b"/URL"):
            return False
        if len(url.selector) > self.settings.max_selector:
            return False
        text = url.selector.decode("latin-1")
        if self._include and not any(p.search(text) for p in self._include):
            return False
        if any(p.search(text) for p in self._exclude):
            return False
        is_menu = url.item_type == MENU
        if is_menu and self.settings.depth is not None and depth > self.settings.depth:
            return False
        for start in self.starts:
            same_server = (url.host, url.port) == (start.host, start.port)
            if not same_server and not self.settings.follow_hosts:
                continue
            if not same_server or not is_menu or _under(url.selector, start.selector):
                return True
        return False


@attrs.define(eq=False)
class _HostState:
    gate: HostGate
    robots: Robots = attrs.field(factory=Robots)
    caps: Caps | None = None
    ready: trio.Event = attrs.field(factory=trio.Event)
    started: bool = False


@attrs.define(eq=False)
class Crawler:
    """One run over one store.  Use ``await crawl(...)``."""

    store: Store
    starts: Sequence[GopherURL]
    settings: CrawlSettings
    on_menu: MenuHook | None = None
    on_progress: ProgressHook | None = None
    report: CrawlReport = attrs.field(factory=CrawlReport)
    _scope: Scope = attrs.field(init=False)
    _frontier: Frontier = attrs.field(init=False)
    _hosts: dict[tuple[str, int], _HostState] = attrs.field(factory=dict, init=False)
    _global: trio.Semaphore = attrs.field(init=False)
    _run_id: int = attrs.field(default=0, init=False)
    _started_at: float = attrs.field(default=0.0, init=False)
    _in_flight: int = attrs.field(default=0, init=False)
    _wakeup: trio.Event = attrs.field(factory=trio.Event, init=False)
    _since_commit: int = attrs.field(default=0, init=False)
    _last_commit: float = attrs.field(factory=time.monotonic, init=False)
    _menu_failed: set[tuple[str, int]] = attrs.field(factory=set, init=False)

    def __attrs_post_init__(self) -> None:
        self._scope = Scope(self.starts, self.settings)
        self._global = trio.Semaphore(self.settings.global_concurrency)
        frontier_path = Path(self.store.root) / ".gophermirror" / "frontier.sqlite"
        self._frontier = Frontier(frontier_path)

    # -- the run -------------------------------------------------------------

    async def run(self) -> CrawlReport:
        """Crawl until the frontier is empty; returns the report."""
        self._run_id = self.store.begin_run()
        self._started_at = time.time()
        try:
            self._frontier.add_many(
                (u.host, u.port, u.selector, u.item_type, 0, u.tls) for u in self.starts
            )
            workers = max(1, min(self.settings.global_concurrency, 64, self._useful_workers()))
            async with trio.open_nursery() as nursery:
                for _ in range(workers):
                    nursery.start_soon(self._worker)
            self._finish()
        finally:
            self.store.commit()
            self._frontier.close()
            self.report.elapsed = time.monotonic() - self.report.started
        return self.report

    def _useful_workers(self) -> int:
        """Workers that can be busy at once: more would only wait at a host's gate."""
        if self.settings.follow_hosts:
            return self.settings.global_concurrency
        servers = {(u.host, u.port) for u in self.starts}
        return self.settings.concurrency * len(servers)

    async def _worker(self) -> None:
        while True:
            task = self._frontier.take()
            if task is None:
                if self._in_flight == 0:
                    self._wakeup.set()
                    return
                event = self._wakeup
                await event.wait()
                continue
            self._in_flight += 1
            try:
                await self._handle(task)
            finally:
                self._in_flight -= 1
                # Wake the idle workers: new tasks may be queued, or all is done.
                self._wakeup.set()
                self._wakeup = trio.Event()
            self._maybe_commit()

    def _maybe_commit(self) -> None:
        self._since_commit += 1
        now = time.monotonic()
        if (
            self._since_commit >= self.settings.commit_every
            or now - self._last_commit >= self.settings.commit_seconds
        ):
            self.store.commit()
            self._since_commit = 0
            self._last_commit = now

    def _finish(self) -> None:
        """Mark items gone from fully crawled holes (never on a partial run).

        A run that saw less than the whole scope marks nothing gone: one cut
        short by ``max_items``, narrowed by ``depth``, ``include`` or
        ``exclude``, or that robots.txt kept from something (those items may
        well still be on the origin).
        """
        s = self.settings
        narrowed = s.depth is not None or s.include or s.exclude or self.report.skipped_robots
        if self.report.truncated or narrowed:
            return
        for start in self.starts:
            key = (start.host, start.port)
            if key in self._menu_failed:
                continue
            self.report.gone += self.store.mark_gone(
                self._run_id, start.host, start.port, start.selector
            )
            if self.settings.prune:
                self.store.prune(start.host, start.port)

    # -- one item ------------------------------------------------------------

    async def _handle(self, task: Task) -> None:
        url = GopherURL(task.host, task.port, task.item_type, task.selector, None, None, task.tls)
        state = await self._host(url)
        if self.settings.robots and not state.robots.allows(url.selector):
            self.report.skipped_robots += 1
            self._progress(url, "robots")
            return
        try:
            result = await self._fetch(url, state)
            entry_outcome = self.store.put(
                host=url.host,
                port=url.port,
                selector=url.selector,
                item_type=url.item_type,
                body=result.body,
                terminator=result.terminator,
                url=str(url),
                run_id=self._run_id,
            )
        except GopherError as exc:  # StoreError too: a write that failed fails this item
            self._failed(url, task, exc)
            return
        outcome = entry_outcome.outcome
        self.report.bytes += len(result.body) + len(result.terminator)
        if url.item_type == MENU:
            self.report.menus += 1
            queued = self._expand(url, task.depth, result.body)
            if self.on_menu is not None:
                self.on_menu(self.store, entry_outcome.entry, queued or outcome != "unchanged")
        if outcome == "new":
            self.report.new += 1
        elif outcome == "changed":
            self.report.changed += 1
        else:
            self.report.unchanged += 1
        self._progress(url, outcome)

    async def _fetch(self, url: GopherURL, state: _HostState) -> client.FetchResult:
        attempt = 0
        while True:
            try:
                async with self._global, state.gate:
                    self.report.requests += 1
                    return await client.fetch(url, self.settings.limits)
            except (ConnectError, GopherTimeout, ConnectionReset):
                if attempt >= self.settings.retries:
                    raise
                attempt += 1
                await trio.sleep(min(0.5 * 2**attempt, 10.0))

    def _failed(self, url: GopherURL, task: Task, exc: GopherError) -> None:
        self.report.failed += 1
        self.report.errors.append(ItemError(str(url), type(exc).__name__, exc.message))
        self.store.mark_failed(
            host=url.host,
            port=url.port,
            selector=url.selector,
            item_type=url.item_type,
            error=f"{type(exc).__name__}: {exc.message}",
            url=str(url),
        )
        if url.item_type == MENU:
            self._menu_failed.add((url.host, url.port))
        self._progress(url, "failed")

    def _expand(self, menu_url: GopherURL, depth: int, body: bytes) -> bool:
        """Queue the links of a fetched menu that are in scope.

        Returns whether a link of it may have become local, or its target
        changed, in this run: a target the mirror did not hold before the run
        (else the menu's map, which points local links at what the mirror
        holds, cannot change).
        """
        targets: list[GopherURL] = []
        for lineno, item in enumerate(parse_menu(body, url=menu_url).lines, 1):
            try:
                target = self._link_target(item, menu_url)
            except BadMenuLine as exc:
                self._bad_line(menu_url, lineno, exc.message)
                continue
            if target is not None and self._scope.follows(target, depth + 1):
                targets.append(target)
        wanted, servable = self._wanted(targets)
        queue: list[tuple[str, int, bytes, bytes, int, bool]] = []
        stored: list[tuple[str, int, bytes, bytes, int, bool]] = []
        arriving = False
        for target, want, held in zip(targets, wanted, servable, strict=True):
            row = (
                target.host,
                target.port,
                target.selector,
                target.item_type,
                depth + 1,
                target.tls,
            )
            (queue if want else stored).append(row)
            arriving = arriving or not held
        if stored:
            # Counted once per run, however many menus link to it.
            self.report.unchanged += self._frontier.add_many(stored, done=True)
            seen: dict[tuple[str, int], list[bytes]] = {}
            for host, port, selector, *_ in stored:
                seen.setdefault((host, port), []).append(selector)
            for (host, port), selectors in seen.items():
                self.store.mark_seen_many(host, port, selectors, "file", self._run_id)
        room = self.settings.max_items - self._frontier.added
        if len(queue) > room:
            queue = queue[: max(room, 0)]
            self.report.truncated = True
        if queue:
            self._frontier.add_many(queue)
        return arriving

    def _bad_line(self, menu_url: GopherURL, lineno: int, message: str) -> None:
        self.report.bad_lines += 1
        self._warn(menu_url, "BadMenuLine", f"menu line {lineno}: {message}")

    def _warn(self, url: GopherURL, error: str, message: str) -> None:
        if len(self.report.warnings) < MAX_WARNINGS:
            self.report.warnings.append(ItemError(str(url), error, message))

    @staticmethod
    def _link_target(item: MenuLine, menu_url: GopherURL) -> GopherURL | None:
        """Where a menu line links; None if nowhere to fetch.

        Raises ``BadMenuLine`` for a line of a fetchable type that cannot be
        followed (an unreadable line, missing fields, a bad port).
        """
        if isinstance(item, RawLine):
            if item.reason == "empty line":
                return None
            raise BadMenuLine(item.reason)
        if item.is_info or item.type in NON_FETCHABLE_TYPES or item.is_url_link:
            return None
        if item.selector is None and item.type == b".":
            return None  # a stray terminator line
        url = url_for_item(item)
        if menu_url.tls and (url.host, url.port) == (menu_url.host, menu_url.port):
            return attrs.evolve(url, tls=True)  # same server: stay on TLS
        return url

    def _wanted(self, targets: list[GopherURL]) -> tuple[list[bool], list[bool]]:
        """For each link: must it be fetched, and does the mirror hold it already?

        Menus are always fetched; documents when not stored OK with the same
        type, or when ``refresh`` / ``refresh_older_than`` asks.  One store
        query per server and kind for the whole menu.
        """
        by_key: dict[tuple[str, int, str], list[bytes]] = {}
        for target in targets:
            kind = "menu" if target.item_type == MENU else "file"
            by_key.setdefault((target.host, target.port, kind), []).append(target.selector)
        known = {
            key: self.store.item_states(key[0], key[1], selectors, key[2])
            for key, selectors in by_key.items()
        }
        older = self.settings.refresh_older_than
        now = time.time()
        wanted, held = [], []
        for target in targets:
            is_menu = target.item_type == MENU
            state = known[(target.host, target.port, "menu" if is_menu else "file")].get(
                target.selector
            )
            # Held with these bytes since before this run (an item that arrived
            # or changed in this run may be a link its menu's map still sends
            # to the origin).
            held.append(
                state is not None and state[1] != "failed" and 0 < state[3] < self._started_at
            )
            if (
                is_menu
                or self.settings.refresh
                or state is None
                or state[1] != "ok"
                or state[0] != target.item_type
            ):
                wanted.append(True)
            else:
                wanted.append(older is not None and now - state[2] > older)
        return wanted, held

    # -- hosts ---------------------------------------------------------------

    async def _host(self, url: GopherURL) -> _HostState:
        key = (url.host, url.port)
        state = self._hosts.get(key)
        if state is None:
            state = _HostState(HostGate(self.settings.concurrency, self.settings.delay))
            self._hosts[key] = state
        if not state.started:
            state.started = True
            try:
                await self._read_host_files(url, state)
            finally:
                state.ready.set()
        await state.ready.wait()
        return state

    async def _read_host_files(self, url: GopherURL, state: _HostState) -> None:
        """Fetch robots.txt and caps.txt once per host and run.

        A missing file (an error item) is normal; a file that cannot be read
        (timeout, too large, reset) is a warning, and the crawl goes on as if
        there were none.
        """
        limits = self.settings.limits
        quick = attrs.evolve(
            limits,
            max_size=min(limits.max_size, 512 * 1024),
            total_timeout=min(limits.total_timeout, 30.0),
        )
        if self.settings.robots:
            robots_url = url.with_selector(b"0", b"robots.txt")
            try:
                async with self._global, state.gate:
                    self.report.requests += 1
                    robots = await client.fetch(robots_url, quick)
                state.robots = parse_robots(robots.body)
                if state.robots.crawl_delay is not None:
                    state.gate.slow_down(state.robots.crawl_delay)
            except ServerError:
                pass
            except GopherError as exc:
                self._warn(robots_url, type(exc).__name__, exc.message)
        caps_url = url.with_selector(b"0", b"caps.txt")
        try:
            async with self._global, state.gate:
                self.report.requests += 1
                caps = await client.fetch(caps_url, quick)
            state.caps = parse_caps(caps.body)
            if state.caps is not None and state.caps.software:
                self.report.servers[url.hostport] = state.caps.software
        except ServerError:
            pass
        except GopherError as exc:
            self._warn(caps_url, type(exc).__name__, exc.message)

    def _progress(self, url: GopherURL, outcome: str) -> None:
        if self.on_progress is not None:
            self.on_progress(self.report, str(url), outcome)


async def crawl(
    store: Store,
    starts: Sequence[GopherURL],
    settings: CrawlSettings = CrawlSettings(),
    *,
    on_menu: MenuHook | None = None,
    on_progress: ProgressHook | None = None,
) -> CrawlReport:
    """Mirror ``starts`` into ``store``; see ``CrawlSettings`` and ``Scope``."""
    crawler = Crawler(store, starts, settings, on_menu, on_progress)
    return await crawler.run()
