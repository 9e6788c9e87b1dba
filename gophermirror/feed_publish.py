"""What the feed layer publishes: Atom documents and the ``latest`` menu.

Owns: turning recorded articles into ``atom.AtomFeed`` values (one per feed
and one across feeds) and into the menu lines of ``ROOT/latest/gophermap``.
Must not touch: the network, the store's files (it is handed a body reader
and returns bytes and lines; the feed layer writes them through
``Store.write_aux`` and ``maps.write_generated_menu``, so ``latest`` is in
the same map dialect as every other map), the clock (callers pass ``now``).

Links of an Atom entry (docs/feeds.md, "Atom"):

- ``alternate``: the original URL the article names (its ``[1] Url:``);
- ``via``: the origin's gopher URL of the article;
- ``related``: the mirrored copy.  The mirror has no fixed address, so with
  an ``advertise`` host:port this is ``gopher://HOST:PORT/<type>/<path>``;
  without one it is the relative reference ``../<path>``, which resolves
  against the Atom file's own location (``ROOT/atom/NAME.xml``) to the copy
  at ``ROOT/<path>``, on disk or on any server that serves ROOT.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterable, Sequence
from typing import Final
from urllib.parse import quote

from .article import parse_article
from .atom import AtomEntry, AtomFeed, render_atom
from .config import Feed
from .feed_state import PARSED_TYPES, Article
from .maps import ATOM_DIR, LATEST_DIR, generated_link
from .paths import MAP_NAME
from .protocol import GopherURL, MenuItem, format_url, info_line

ALL_FEEDS: Final = "all"
"""The name of the document across feeds (``atom/all.xml``)."""

LATEST_MAP: Final = f"{LATEST_DIR}/{MAP_NAME}"
"""The aggregated menu, relative to ROOT (written by ``maps.write_generated_menu``)."""

SUMMARY_CHARS: Final = 400
"""Longest Atom summary (the article's first paragraph, cut at a word)."""

_PATH_SAFE: Final = "/=-._~!$&'()*+,;@"

BodyReader = Callable[[Article], bytes | None]
"""The stored body of an article, or None when the store no longer has it."""


def atom_path(name: str) -> str:
    """``atom/NAME.xml``, relative to ROOT."""
    return f"{ATOM_DIR}/{name}.xml"


def mirror_href(article: Article, advertise: tuple[str, int] | None) -> str:
    """The link to the mirrored copy: absolute with ``advertise``, else relative
    to an Atom file in ``ROOT/atom/``."""
    if advertise is not None:
        host, port = advertise
        url = GopherURL(host.lower(), port, article.item_type, article.mirror_selector)
        return format_url(url)
    return "../" + quote(article.path, safe=_PATH_SAFE)


def _moment(epoch: float) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(epoch, datetime.UTC)


def _published(article: Article) -> datetime.datetime | None:
    if article.date is None:
        return None
    return datetime.datetime.combine(article.date, datetime.time(), datetime.UTC)


def _summary(text: str) -> str | None:
    paragraph = next((p.strip() for p in text.split("\n\n") if p.strip()), "")
    paragraph = " ".join(paragraph.split())
    if not paragraph:
        return None
    if len(paragraph) <= SUMMARY_CHARS:
        return paragraph
    cut = paragraph[:SUMMARY_CHARS].rsplit(" ", 1)[0]
    return cut + " …"


def atom_entry(
    article: Article, body: bytes | None, *, advertise: tuple[str, int] | None
) -> AtomEntry:
    """One article as an Atom entry; ``body`` gives the summary and content."""
    links: list[tuple[str, str]] = []
    if article.original_url:
        links.append(("alternate", article.original_url))
    links.append(("via", article.url))
    if body is not None:
        links.append(("related", mirror_href(article, advertise)))
    summary = content = None
    if body is not None and article.item_type in PARSED_TYPES:
        content = parse_article(body).body
        summary = _summary(content)
    return AtomEntry(
        id=article.url,
        title=article.display_title,
        updated=_moment(article.updated),
        published=_published(article),
        authors=article.authors,
        links=links,
        summary=summary,
        content=content,
        rights=article.licence,
    )


def feed_document(
    feed: Feed,
    articles: Sequence[Article],
    read_body: BodyReader,
    *,
    now: float,
    advertise: tuple[str, int] | None = None,
) -> bytes:
    """``atom/NAME.xml`` for ``feed``; ``articles`` already retained and ordered."""
    updated = max((a.updated for a in articles), default=now)
    document = AtomFeed(
        id=format_url(feed.url),
        title=feed.title or feed.name,
        updated=_moment(updated),
        links=[("self", f"{feed.name}.xml"), ("via", format_url(feed.url))],
        entries=[atom_entry(a, read_body(a), advertise=advertise) for a in articles],
        subtitle=f"Articles of the gopher menu {format_url(feed.url)}, as mirrored",
    )
    return render_atom(document)


def all_document(
    feed_id: str,
    articles: Sequence[Article],
    read_body: BodyReader,
    *,
    now: float,
    advertise: tuple[str, int] | None = None,
) -> bytes:
    """``atom/all.xml``: every feed's retained articles, newest first.

    ``feed_id`` is a permanent IRI made once per store (a ``urn:uuid:``).
    """
    updated = max((a.updated for a in articles), default=now)
    document = AtomFeed(
        id=feed_id,
        title="All followed gopher feeds",
        updated=_moment(updated),
        links=[("self", f"{ALL_FEEDS}.xml")],
        entries=[atom_entry(a, read_body(a), advertise=advertise) for a in articles],
    )
    return render_atom(document)


def unique_items(articles: Iterable[Article]) -> list[Article]:
    """Drop repeats of an origin item listed by several feeds (first one kept)."""
    seen: set[tuple[str, int, bytes]] = set()
    out = []
    for article in articles:
        key = (article.host, article.port, article.selector)
        if key not in seen:
            seen.add(key)
            out.append(article)
    return out


def latest_items(
    articles: Sequence[Article], feed_titles: dict[str, str], *, now: float
) -> list[MenuItem]:
    """The lines of the ``latest`` menu: newest first, one heading per date.

    Links point at the mirrored copies with selectors ``/<path>`` (the form
    of every gophermap of ROOT) and carry no host and port: the server that
    serves the map fills in its own.  ``articles`` are already ordered.
    """
    stamp = _moment(now).strftime("%Y-%m-%d %H:%M UTC")
    lines: list[MenuItem] = [
        info_line("Latest articles of the followed gopher feeds"),
        info_line(f"(updated {stamp}; newest first)"),
    ]
    if not articles:
        lines += [_blank(), info_line("Nothing yet: run `gophermirror feed update`.")]
    heading = None
    for article in articles:
        label = article.date_label.lstrip("~")
        if label != heading:
            lines += [_blank(), info_line(f"--- {label} ---")]
            heading = label
        title = f"{article.display_title} ({feed_titles.get(article.feed, article.feed)})"
        lines.append(generated_link(article.item_type, title, article.mirror_selector))
    return lines


def _blank() -> MenuItem:
    return info_line("")
