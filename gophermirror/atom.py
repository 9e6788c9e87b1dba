"""Write Atom 1.0 feeds (RFC 4287).

Owns: the ``AtomFeed`` / ``AtomEntry`` values and ``render_atom``, which turns
them into UTF-8 XML bytes that are valid Atom whatever text they hold.

Must not touch: feeds, menus, the store, the network or the clock; deciding
what goes into a feed is the feed layer's job.  This module only writes.

Rules it keeps so that every output is valid Atom:

- Characters that XML 1.0 forbids (C0 controls other than TAB, LF and CR,
  lone surrogates, U+FFFE, U+FFFF) are dropped from all text.  CR is
  written as ``&#13;`` so that it survives parsing.
- Every entry has ``id``, ``title`` and ``updated``.  When any entry has no
  author, the feed gets one ``author`` named after the feed title, which
  those entries inherit (RFC 4287 section 4.1.1).
- An entry with no content and no ``alternate`` link gets an empty text
  ``content`` (section 4.1.1.3).  A second ``alternate`` link is written as
  ``related`` (sections 4.1.1, 4.1.2); exact duplicate links are dropped.
- Dates are RFC 3339 in UTC (``2025-07-21T10:30:00Z``, whole seconds); a
  naive datetime is taken to be UTC; one that cannot be moved to UTC (within a
  day of year 1 or 9999) is clamped to the first or last second.
- ids and hrefs are IRIs: spaces, controls and the characters ``"<>\\^`{|}``
  are percent-encoded as UTF-8, everything else is kept.

Entry ids: use the gopher URL of the origin item (it is stable and unique
per item); the feed id is the gopher URL of the followed menu.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterable

import attrs

__all__ = ["ATOM_NAMESPACE", "AtomEntry", "AtomFeed", "render_atom"]

ATOM_NAMESPACE = "http://www.w3.org/2005/Atom"


def _strings(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(items)


def _pairs(items: Iterable[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    return tuple((rel, href) for rel, href in items)


def _entries(items: Iterable[AtomEntry]) -> tuple[AtomEntry, ...]:
    return tuple(items)


@attrs.frozen
class AtomEntry:
    """One ``atom:entry``: usually one article of a followed gopher menu."""

    id: str
    """A permanent IRI for the entry, e.g. the gopher URL of the origin item."""
    title: str
    """Plain-text title."""
    updated: datetime.datetime
    """When the entry last changed (aware, UTC preferred; naive counts as UTC)."""
    published: datetime.datetime | None = None
    """When the item was first published or first seen, if known."""
    authors: tuple[str, ...] = attrs.field(default=(), converter=_strings)
    """Author names; blank names are skipped."""
    links: tuple[tuple[str, str], ...] = attrs.field(default=(), converter=_pairs)
    """``(rel, href)`` pairs: ``alternate`` for the original URL, ``via`` for the
    origin gopher URL, ``related`` for the mirrored copy; an empty rel means
    ``alternate``."""
    summary: str | None = None
    """A short plain-text summary."""
    content: str | None = None
    """The plain-text body."""
    rights: str | None = None
    """The licence or copyright line."""


@attrs.frozen
class AtomFeed:
    """One ``atom:feed``: usually one followed gopher menu."""

    id: str
    """A permanent IRI for the feed, e.g. the gopher URL of the followed menu."""
    title: str
    """Plain-text title; also the fallback author name."""
    updated: datetime.datetime
    """When the feed last changed (aware, UTC preferred; naive counts as UTC)."""
    links: tuple[tuple[str, str], ...] = attrs.field(converter=_pairs)
    """``(rel, href)`` pairs, e.g. ``self`` for the feed file, ``via`` for the menu."""
    entries: tuple[AtomEntry, ...] = attrs.field(converter=_entries)
    """The entries, written in this order."""
    subtitle: str | None = None
    """An optional plain-text subtitle."""
    generator: str = "gophermirror"
    """The name written in ``atom:generator``."""


# --- text --------------------------------------------------------------------
_NOT_XML_CHAR = re.compile(r"[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_TEXT_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", "\r": "&#13;"})
_ATTR_ESCAPES = str.maketrans(
    {
        "&": "&amp;",
        "<": "&lt;",
        ">": "&gt;",
        '"': "&quot;",
        "\t": "&#9;",
        "\n": "&#10;",
        "\r": "&#13;",
    }
)
_NOT_IRI_CHAR = re.compile(r"[\x00-\x20\x7f-\x9f\"<>\\^`{|}\ud800-\udfff\ufffe\uffff]")


def _clean(text: str) -> str:
    """``text`` without the characters XML 1.0 forbids."""
    return _NOT_XML_CHAR.sub("", text)


def _text(text: str) -> str:
    return _clean(text).translate(_TEXT_ESCAPES)


def _attr(text: str) -> str:
    return _clean(text).translate(_ATTR_ESCAPES)


def _iri(text: str) -> str:
    """``text`` with the characters an IRI cannot hold percent-encoded."""
    return _NOT_IRI_CHAR.sub(_percent_encode, text)


def _percent_encode(match: re.Match[str]) -> str:
    raw = match.group().encode("utf-8", errors="surrogatepass")
    return "".join(f"%{byte:02X}" for byte in raw)


def _timestamp(moment: datetime.datetime) -> str:
    """RFC 3339 in UTC, whole seconds; a naive ``moment`` counts as UTC."""
    if moment.utcoffset() is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    try:
        utc = moment.astimezone(datetime.UTC)
    except OverflowError:  # within a day of year 1 or 9999: clamp to the end
        ahead = (moment.utcoffset() or datetime.timedelta(0)) > datetime.timedelta(0)
        utc = datetime.datetime.min if ahead else datetime.datetime.max
    return (
        f"{utc.year:04d}-{utc.month:02d}-{utc.day:02d}"
        f"T{utc.hour:02d}:{utc.minute:02d}:{utc.second:02d}Z"
    )


# --- elements ----------------------------------------------------------------
def _leaf(indent: str, name: str, text: str, attributes: str = "") -> str:
    return f"{indent}<{name}{attributes}>{_text(text)}</{name}>"


def _author(indent: str, name: str) -> list[str]:
    return [f"{indent}<author>", _leaf(indent + "  ", "name", name), f"{indent}</author>"]


def _link_lines(indent: str, links: Iterable[tuple[str, str]]) -> list[str]:
    seen: set[tuple[str, str]] = set()
    has_alternate = False
    lines = []
    for rel, href in links:
        rel = _clean(rel).strip() or "alternate"
        if rel == "alternate":
            if has_alternate:
                rel = "related"
            has_alternate = True
        target = _iri(href)
        if (rel, target) in seen:
            continue
        seen.add((rel, target))
        lines.append(f'{indent}<link rel="{_attr(rel)}" href="{_attr(target)}"/>')
    return lines


def _names(authors: Iterable[str]) -> list[str]:
    return [name for name in authors if _clean(name).strip()]


def _has_alternate(links: Iterable[tuple[str, str]]) -> bool:
    return any((_clean(rel).strip() or "alternate") == "alternate" for rel, _ in links)


def _entry_lines(entry: AtomEntry) -> list[str]:
    inner = "    "
    lines = [
        "  <entry>",
        _leaf(inner, "id", _iri(entry.id)),
        _leaf(inner, "title", entry.title),
        _leaf(inner, "updated", _timestamp(entry.updated)),
    ]
    if entry.published is not None:
        lines.append(_leaf(inner, "published", _timestamp(entry.published)))
    for name in _names(entry.authors):
        lines += _author(inner, name)
    lines += _link_lines(inner, entry.links)
    if entry.rights is not None:
        lines.append(_leaf(inner, "rights", entry.rights))
    if entry.summary is not None:
        lines.append(_leaf(inner, "summary", entry.summary))
    if entry.content is not None or not _has_alternate(entry.links):
        lines.append(_leaf(inner, "content", entry.content or "", ' type="text"'))
    lines.append("  </entry>")
    return lines


def render_atom(feed: AtomFeed) -> bytes:
    """The feed as an Atom 1.0 document: UTF-8 bytes with an XML declaration."""
    lines = [
        '<?xml version="1.0" encoding="utf-8"?>',
        f'<feed xmlns="{ATOM_NAMESPACE}">',
        _leaf("  ", "id", _iri(feed.id)),
        _leaf("  ", "title", feed.title),
    ]
    if feed.subtitle is not None:
        lines.append(_leaf("  ", "subtitle", feed.subtitle))
    lines.append(_leaf("  ", "updated", _timestamp(feed.updated)))
    if any(not _names(entry.authors) for entry in feed.entries):
        fallback = next(
            (name for name in (feed.title, feed.generator) if _clean(name).strip()), "unknown"
        )
        lines += _author("  ", fallback)
    lines += _link_lines("  ", feed.links)
    lines.append(_leaf("  ", "generator", feed.generator))
    for entry in feed.entries:
        lines += _entry_lines(entry)
    lines.append("</feed>")
    return ("\n".join(lines) + "\n").encode("utf-8")
