"""The feed state: which articles each followed feed has listed, and since when.

Owns: ``ROOT/.gophermirror/feeds.sqlite`` (its schema, its transactions),
the ``Article`` value, the pure reading of a feed menu into article links
(``feed_links``), the listing order (``sort_key``) and retention
(``retained``).  Must not touch: the network, the store's files and
manifest (it is handed bodies and entries), the clock (callers pass ``now``).

An article is identified by its feed and its selector (with host and port):
a re-ordered menu or an edited display string never makes it new again, an
article gone from the menu keeps its row (``listed`` becomes false) and
comes back to it without being new.  Ids are integers handed out in the
order articles are first seen; within one check the bottom of the menu gets
the lowest id, so that a menu listed newest first keeps its order.
"""

from __future__ import annotations

import calendar
import contextlib
import datetime
import json
import re
import sqlite3
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Final

import attrs

from .article import ArticleMeta, parse_article
from .errors import BadMenuLine, StoreError
from .protocol import (
    MENU,
    NON_FETCHABLE_TYPES,
    TEXT,
    GopherURL,
    decode_for_humans,
    format_url,
    parse_menu,
    url_for_item,
)

STATE_FILE: Final = "feeds.sqlite"
"""The file name below ``ROOT/.gophermirror/``."""

SCHEMA_VERSION: Final = 1
"""``PRAGMA user_version`` of the feed state this code writes."""

PARSED_TYPES: Final = frozenset({TEXT})
"""Item types whose bodies are read with ``article.parse_article``; the
metadata of other articles (images, binaries) is their menu line only."""

_SCHEMA: Final = """
CREATE TABLE articles (
    id INTEGER PRIMARY KEY,
    feed TEXT NOT NULL,
    host TEXT NOT NULL,
    port INTEGER NOT NULL,
    selector BLOB NOT NULL,
    item_type BLOB NOT NULL,
    url TEXT NOT NULL,
    path TEXT NOT NULL,
    display BLOB NOT NULL,
    first_display BLOB NOT NULL,
    title TEXT,
    authors TEXT NOT NULL,
    date TEXT,
    date_text TEXT,
    original_url TEXT,
    licence TEXT,
    publisher TEXT,
    sha256 TEXT NOT NULL,
    size INTEGER NOT NULL,
    first_seen REAL NOT NULL,
    updated REAL NOT NULL,
    last_listed REAL NOT NULL,
    listed INTEGER NOT NULL
);
CREATE UNIQUE INDEX articles_key ON articles (feed, host, port, selector);
CREATE INDEX articles_item ON articles (host, port, selector);
CREATE TABLE state (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
"""

_COLUMNS: Final = (
    "id, feed, host, port, selector, item_type, url, path, display, first_display, title,"
    " authors, date, date_text, original_url, licence, publisher, sha256, size, first_seen,"
    " updated, last_listed, listed"
)


@attrs.frozen
class FeedLink:
    """One article link read from a feed menu."""

    selector: bytes
    """The selector, exact bytes."""
    item_type: bytes
    """The link's item type byte."""
    display: bytes
    """The display string as the menu sends it."""


@attrs.frozen
class StoredBody:
    """What the store holds for one article link (handed in by the feed layer)."""

    path: str
    """The store's path of the body, relative to ROOT."""
    sha256: str
    """Hex sha256 of the body."""
    size: int
    """Its length."""
    read: Callable[[], bytes] = attrs.field(eq=False, repr=False)
    """Returns the body bytes (called only when the metadata must be parsed)."""


StoredLookup = Callable[[FeedLink], StoredBody | None]
"""What the store holds for a link: a ``StoredBody``, or None when it has no body."""


@attrs.frozen
class Article:
    """One article of a followed feed, as the feed state records it."""

    id: int
    """The integer of ``feed read ID``."""
    feed: str
    """The name of the feed that listed it."""
    host: str
    """Origin host, lower-cased."""
    port: int
    """Origin port."""
    selector: bytes
    """Origin selector, exact bytes."""
    item_type: bytes
    """Item type byte of the menu link."""
    url: str
    """The origin's gopher URL of the article."""
    path: str
    """Where the mirrored copy is, relative to ROOT (the store's path)."""
    display: bytes
    """The menu's display string at the last check (titles can be edited)."""
    first_display: bytes
    """The display string when the article was first seen."""
    title: str | None
    """The title read from the article itself, if any."""
    authors: tuple[str, ...]
    """Author names read from the article."""
    date: datetime.date | None
    """The article's date (a month alone counts as its 1st day)."""
    date_text: str | None
    """The date as the article writes it."""
    original_url: str | None
    """Where the story was first published (the ``[1] Url:`` line)."""
    licence: str | None
    """The licence or condition line."""
    publisher: str | None
    """Who published it."""
    sha256: str
    """Hex sha256 of the stored body the metadata was read from."""
    size: int
    """Length of that body."""
    first_seen: float
    """Unix time the feed first listed it (and it was stored)."""
    updated: float
    """Unix time its stored body last changed (``first_seen`` until then)."""
    last_listed: float
    """Unix time of the last check that found it in the menu."""
    listed: bool
    """Whether the feed menu listed it at the last successful check."""

    @property
    def menu_title(self) -> str:
        """The menu's display string, for a person."""
        return decode_for_humans(self.display).strip()

    @property
    def display_title(self) -> str:
        """The title to show: the menu's, else the article's, else the selector."""
        return self.menu_title or (self.title or "").strip() or decode_for_humans(self.selector)

    @property
    def precision(self) -> str:
        """How much the article's date says: ``day``, ``month``, ``year`` or ``none``."""
        return "none" if self.date is None else date_precision(self.date_text or "")

    @property
    def sort_date(self) -> datetime.date:
        """The day the listings file the article under.

        A full date is itself.  A month or a year alone (magical.fish writes
        ``Date: 2025-07``) is the day the article was first seen, moved into
        that month or year: exact when a feed is followed as it goes, the
        period's last day for an older article.  No date: the day first seen.
        """
        seen = datetime.datetime.fromtimestamp(self.first_seen, datetime.UTC).date()
        if self.date is None:
            return seen
        start, end = period(self.date, self.precision)
        return min(max(seen, start), end)

    @property
    def date_label(self) -> str:
        """The date as precise as the article gives it: ``YYYY-MM-DD``,
        ``YYYY-MM`` or ``YYYY``; with no date, ``~`` and the day first seen."""
        if self.date is None:
            return "~" + self.sort_date.isoformat()
        shown = {"month": "%Y-%m", "year": "%Y"}.get(self.precision, "%Y-%m-%d")
        return self.date.strftime(shown)

    @property
    def mirror_selector(self) -> bytes:
        """The selector of the mirrored copy in gophermaps of ROOT: ``/<path>``."""
        return b"/" + self.path.encode("utf-8")

    def as_json(self) -> dict[str, Any]:
        """A JSON-ready description (bytes shown as text)."""
        return {
            "id": self.id,
            "feed": self.feed,
            "date": self.date.isoformat() if self.date else None,
            "date_text": self.date_text,
            "title": self.display_title,
            "menu_title": self.menu_title,
            "first_menu_title": decode_for_humans(self.first_display).strip(),
            "article_title": self.title,
            "authors": list(self.authors),
            "url": self.url,
            "selector": decode_for_humans(self.selector),
            "type": self.item_type.decode("latin-1"),
            "mirror_selector": decode_for_humans(self.mirror_selector),
            "path": self.path,
            "original_url": self.original_url,
            "licence": self.licence,
            "publisher": self.publisher,
            "sha256": self.sha256,
            "size": self.size,
            "first_seen": _iso(self.first_seen),
            "updated": _iso(self.updated),
            "listed": self.listed,
        }


def _iso(moment: float) -> str:
    return datetime.datetime.fromtimestamp(moment, datetime.UTC).isoformat(timespec="seconds")


# --------------------------------------------------------------------------
# Pure helpers
# --------------------------------------------------------------------------


_MONTH_ONLY: Final = re.compile(r"\s*\d{4}[-/.]\d{1,2}\s*|\s*[A-Za-z]+\.?,?\s+\d{4}\s*")
_YEAR_ONLY: Final = re.compile(r"\s*\d{4}\s*")


def date_precision(date_text: str) -> str:
    """``month`` for ``2025-07`` or ``July 2025``, ``year`` for ``2025``, else ``day``
    (the forms ``article.parse_date`` reads)."""
    if _YEAR_ONLY.fullmatch(date_text):
        return "year"
    if _MONTH_ONLY.fullmatch(date_text):
        return "month"
    return "day"


def period(date: datetime.date, precision: str) -> tuple[datetime.date, datetime.date]:
    """The first and last day a date of this precision can mean."""
    if precision == "year":
        return date.replace(month=1, day=1), date.replace(month=12, day=31)
    if precision == "month":
        days = calendar.monthrange(date.year, date.month)[1]
        return date.replace(day=1), date.replace(day=days)
    return date, date


def is_article_type(item_type: bytes) -> bool:
    """Whether a link of this type can be an article: a document, not a menu."""
    return item_type != MENU and item_type not in NON_FETCHABLE_TYPES


def feed_links(body: bytes, feed_url: GopherURL) -> list[FeedLink]:
    """The article links of a feed menu body, in menu order, one per selector.

    An article link is a well-formed document link (not info, menu, search,
    telnet or ``URL:``) on the feed's own host and port, the only ones a
    depth-0 mirror of the feed downloads.
    """
    seen: set[bytes] = set()
    links: list[FeedLink] = []
    for item in parse_menu(body, url=feed_url).items:
        if item.is_info or not is_article_type(item.type) or item.is_url_link:
            continue
        try:
            url = url_for_item(item)
        except BadMenuLine:
            continue
        if (url.host, url.port) != (feed_url.host, feed_url.port) or url.selector in seen:
            continue
        seen.add(url.selector)
        links.append(FeedLink(url.selector, item.type, item.display))
    return links


def sort_key(article: Article) -> tuple[datetime.date, float, int]:
    """Listing order, newest first when sorted with ``reverse=True``."""
    return (article.sort_date, article.first_seen, article.id)


def newest_first(articles: Iterable[Article]) -> list[Article]:
    """``articles`` by date, then first seen, then id; newest first."""
    return sorted(articles, key=sort_key, reverse=True)


def retained(
    articles: Iterable[Article],
    *,
    max_items: int | None,
    max_age_days: float | None,
    now: float,
) -> list[Article]:
    """What the listings of one feed show: first seen within ``max_age_days``,
    then the newest ``max_items``; newest first.  Nothing is deleted."""
    kept = newest_first(articles)
    if max_age_days is not None:
        oldest = now - max_age_days * 86400.0
        kept = [a for a in kept if a.first_seen >= oldest]
    if max_items is not None:
        kept = kept[:max_items]
    return kept


# --------------------------------------------------------------------------
# The SQLite file
# --------------------------------------------------------------------------


def state_path(root: Path | str) -> Path:
    """``ROOT/.gophermirror/feeds.sqlite``."""
    return Path(root) / ".gophermirror" / STATE_FILE


def _article(row: Sequence[Any]) -> Article:
    return Article(
        id=row[0],
        feed=row[1],
        host=row[2],
        port=row[3],
        selector=bytes(row[4]),
        item_type=bytes(row[5]),
        url=row[6],
        path=row[7],
        display=bytes(row[8]),
        first_display=bytes(row[9]),
        title=row[10],
        authors=tuple(json.loads(row[11])),
        date=None if row[12] is None else datetime.date.fromisoformat(row[12]),
        date_text=row[13],
        original_url=row[14],
        licence=row[15],
        publisher=row[16],
        sha256=row[17],
        size=row[18],
        first_seen=row[19],
        updated=row[20],
        last_listed=row[21],
        listed=bool(row[22]),
    )


def _meta_columns(meta: ArticleMeta | None) -> tuple[Any, ...]:
    if meta is None:
        return (None, "[]", None, None, None, None, None)
    return (
        meta.title,
        json.dumps(list(meta.authors), ensure_ascii=False),
        meta.date.isoformat() if meta.date else None,
        meta.date_text,
        meta.original_url,
        meta.licence,
        meta.publisher,
    )


def read_metadata(item_type: bytes, body: bytes) -> ArticleMeta | None:
    """The article's own metadata, for the types that carry it (text)."""
    return parse_article(body) if item_type in PARSED_TYPES else None


@attrs.define(eq=False)
class FeedState:
    """The open feed-state file.  Use ``FeedState.open``; close it (or ``with``)."""

    path: Path
    """The SQLite file."""
    _db: sqlite3.Connection

    @classmethod
    def open(cls, root: Path | str, *, create: bool = True) -> FeedState | None:
        """Open the state of the store at ``root``.

        Returns None when there is none and ``create`` is false, or when
        ``root`` is not a store (no ``.gophermirror/``): nothing followed yet.
        """
        path = state_path(root)
        if not path.parent.is_dir() or (not create and not path.is_file()):
            return None
        try:
            db = sqlite3.connect(path, isolation_level=None, timeout=30.0)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open feed state: {exc}", path) from exc
        state = cls(path, db)
        try:
            state._setup(create)
        except BaseException:
            db.close()
            raise
        return state

    def _setup(self, create: bool) -> None:
        db = self._db
        try:
            db.execute("PRAGMA journal_mode = WAL")
            db.execute("PRAGMA synchronous = FULL")
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version == 0 and create:
                db.execute("BEGIN IMMEDIATE")
                if db.execute("PRAGMA user_version").fetchone()[0] == 0:
                    for statement in _SCHEMA.split(";"):
                        if statement.strip():
                            db.execute(statement)
                    db.execute(
                        "INSERT INTO state VALUES ('feed_id', ?)", (f"urn:uuid:{uuid.uuid4()}",)
                    )
                    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                db.execute("COMMIT")
            elif version > SCHEMA_VERSION:
                raise StoreError(
                    f"feed state schema {version} is newer than this program", self.path
                )
        except sqlite3.DatabaseError as exc:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise StoreError(f"feed state unreadable: {exc}", self.path) from exc

    def close(self) -> None:
        """Close the file (a transaction still open is rolled back)."""
        self._db.close()

    def __enter__(self) -> FeedState:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # --- reading ----------------------------------------------------------------

    @property
    def ready(self) -> bool:
        """Whether the schema exists (false for a file opened with ``create=False``
        before any update wrote it)."""
        with self._errors():
            return bool(self._db.execute("PRAGMA user_version").fetchone()[0])

    def value(self, key: str) -> str | None:
        """A value of the ``state`` table (``feed_id``: the id of ``all.xml``)."""
        if not self.ready:
            return None
        with self._errors():
            row = self._db.execute("SELECT value FROM state WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def articles(self, feeds: Iterable[str] | None = None) -> list[Article]:
        """Every article of ``feeds`` (all when None), in id order."""
        if not self.ready:
            return []
        sql, args = f"SELECT {_COLUMNS} FROM articles", []
        if feeds is not None:
            args = list(feeds)
            sql += f" WHERE feed IN ({','.join('?' * len(args))})"
        with self._errors():
            return [_article(row) for row in self._db.execute(sql + " ORDER BY id", args)]

    def article(self, article_id: int) -> Article | None:
        """The article with this id."""
        if not self.ready:
            return None
        with self._errors():
            row = self._db.execute(
                f"SELECT {_COLUMNS} FROM articles WHERE id = ?", (article_id,)
            ).fetchone()
        return None if row is None else _article(row)

    def find(self, host: str, port: int, selector: bytes) -> Article | None:
        """The first-recorded article at this origin host, port and selector."""
        if not self.ready:
            return None
        with self._errors():
            row = self._db.execute(
                f"SELECT {_COLUMNS} FROM articles WHERE host = ? AND port = ? AND selector = ?"
                " ORDER BY id LIMIT 1",
                (host.lower(), port, selector),
            ).fetchone()
        return None if row is None else _article(row)

    # --- writing ----------------------------------------------------------------

    def record_check(
        self,
        feed: str,
        feed_url: GopherURL,
        links: Sequence[FeedLink],
        stored: StoredLookup,
        *,
        now: float,
    ) -> tuple[list[Article], int]:
        """Record one successful check of ``feed``, all in one transaction.

        ``stored(link)`` says what the store holds for a link: ``(path,
        sha256, size, body reader)`` or None when it has no body (not
        downloaded: it is left for a later check).  Returns the new articles
        and how many listed links were left for later.
        """
        db = self._db
        with self._errors():
            db.execute("BEGIN IMMEDIATE")
            try:
                new_ids, waiting = self._record(feed, feed_url, links, stored, now)
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        new = [a for a in (self.article(i) for i in new_ids) if a is not None]
        return new, waiting

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        """SQLite trouble (a lock held too long, a full disk) as ``StoreError``."""
        try:
            yield
        except sqlite3.Error as exc:
            raise StoreError(f"feed state: {exc}", self.path) from exc

    def _record(
        self,
        feed: str,
        feed_url: GopherURL,
        links: Sequence[FeedLink],
        stored: StoredLookup,
        now: float,
    ) -> tuple[list[int], int]:
        db = self._db
        host, port = feed_url.host, feed_url.port
        known = {
            bytes(row[1]): (row[0], row[2])
            for row in db.execute(
                "SELECT id, selector, sha256 FROM articles"
                " WHERE feed = ? AND host = ? AND port = ?",
                (feed, host, port),
            )
        }
        listed: set[bytes] = set()
        new_ids: list[int] = []
        waiting = 0
        # Bottom of the menu first: a newest-first menu's top gets the highest id.
        for link in reversed(links):
            found = stored(link)
            row = known.get(link.selector)
            if row is None and found is None:
                waiting += 1
                continue
            listed.add(link.selector)
            if row is not None:
                article_id, sha = row
                db.execute(
                    "UPDATE articles SET display = ?, listed = 1, last_listed = ? WHERE id = ?",
                    (link.display, now, article_id),
                )
                if found is not None and found.sha256 != sha:
                    meta = read_metadata(link.item_type, found.read())
                    db.execute(
                        "UPDATE articles SET title = ?, authors = ?, date = ?, date_text = ?,"
                        " original_url = ?, licence = ?, publisher = ?, sha256 = ?, size = ?,"
                        " path = ?, updated = ? WHERE id = ?",
                        (*_meta_columns(meta), found.sha256, found.size, found.path, now,
                         article_id),
                    )  # fmt: skip
                continue
            assert found is not None
            meta = read_metadata(link.item_type, found.read())
            url = format_url(feed_url.with_selector(link.item_type, link.selector))
            cursor = db.execute(
                f"INSERT INTO articles ({_COLUMNS.split(', ', 1)[1]})"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (feed, host, port, link.selector, link.item_type, url, found.path, link.display,
                 link.display, *_meta_columns(meta), found.sha256, found.size, now, now, now, 1),
            )  # fmt: skip
            assert cursor.lastrowid is not None
            new_ids.append(cursor.lastrowid)
        gone = [article_id for selector, (article_id, _) in known.items() if selector not in listed]
        db.executemany("UPDATE articles SET listed = 0 WHERE id = ?", [(i,) for i in gone])
        new_ids.reverse()  # menu order
        return new_ids, waiting
