"""The synthetic hole the benchmark mirrors and serves.

Owns: ``build_hole`` (N articles in the magical.fish layout, listed by
menus of about 100 items a few levels deep, with back links that make
cycles) and the two files the C programs read: the origin's hole file
(``selector NUL reply NUL ...``) and the load client's targets (``selector
TAB length TAB crc32``).  Must not touch: the network, the product's store.

Shape (selectors; every menu also links up, to the root, and pages to
their neighbours, so the link graph has cycles)::

    /                          root: info lines, Feeds, about.txt, and links a
                               mirror must not follow (other host, URL:, search)
    /feeds  ->  /feeds/news  ->  /feeds/news/bench        the index
    /feeds/news/bench/sNN                                 sections (only past 100 pages)
    .../PPPP                                              pages of 100 articles
    .../PPPP/<n>                                          article n (2 to 6 KB)
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Sequence
from pathlib import Path

import attrs

from gophermirror.article import sample_article
from gophermirror.protocol import MENU, TEXT, MenuItem, format_menu, info_line, link_line

HOST = "127.0.0.1"
"""The only address the benchmark uses."""

PER_PAGE = 100
"""Articles on one page menu (and pages in one section)."""

ROOT = b"/"
"""The start menu: ``gopher://127.0.0.1:PORT/1/`` asks for selector ``/``."""

INDEX = b"/feeds/news/bench"
"""The menu that lists the pages (or the sections)."""

TERMINATOR = b".\r\n"

ROBOTS = b"User-agent: *\nDisallow: /private/\n"
CAPS = b"CAPS\nCapsVersion=1\nServerSoftware=bench-origin\nServerSoftwareVersion=1\n"


@attrs.frozen(eq=False)
class Hole:
    """A hole held in memory: what every selector answers, byte for byte."""

    port: int
    """The port its menus point at (the origin's)."""
    replies: dict[bytes, bytes]
    """Selector -> the exact reply (menus end with the lone-dot line)."""
    menus: tuple[bytes, ...]
    """Selectors of the menus a mirror fetches, root first."""
    documents: tuple[bytes, ...]
    """Selectors of the documents a mirror fetches (articles, about.txt)."""
    articles: int
    """How many articles."""
    menu_set: frozenset[bytes] = attrs.field(
        init=False, default=attrs.Factory(lambda self: frozenset(self.menus), takes_self=True)
    )
    """The menus, for lookups."""

    @property
    def items(self) -> tuple[bytes, ...]:
        """Everything a full mirror fetches (besides robots.txt and caps.txt)."""
        return self.menus + self.documents

    @property
    def item_bytes(self) -> int:
        """Bytes of every reply a full mirror fetches."""
        return sum(len(self.replies[s]) for s in self.items)

    def item_type(self, selector: bytes) -> bytes:
        """The gopher type a link to ``selector`` carries."""
        return MENU if selector in self.menu_set else TEXT

    def url(self, selector: bytes = ROOT) -> str:
        """``gopher://127.0.0.1:PORT/<type><selector>``."""
        return f"gopher://{HOST}:{self.port}/{self.item_type(selector).decode()}" + (
            selector.decode("latin-1")
        )

    def write_origin_file(self, path: Path) -> Path:
        """Write ``selector NUL reply NUL ...`` for ``bench/origin.c``."""
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as out:
            for selector, reply in self.replies.items():
                if b"\x00" in selector or b"\x00" in reply:
                    raise ValueError(f"NUL byte in {selector!r}: the origin file cannot hold it")
                out.write(selector + b"\x00" + reply + b"\x00")
        return path


def write_targets(path: Path, expected: Iterable[tuple[bytes, bytes]]) -> Path:
    """Write ``selector TAB length TAB crc32`` lines for ``bench/load.c``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as out:
        for selector, reply in expected:
            if any(c in selector for c in b"\t\r\n"):
                raise ValueError(f"selector {selector!r} cannot be a load target")
            out.write(b"%s\t%d\t%08x\n" % (selector, len(reply), zlib.crc32(reply)))
    return path


def write_selectors(path: Path, selectors: Sequence[bytes]) -> Path:
    """One selector a line (for the trio loop)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join(s + b"\n" for s in selectors))
    return path


def write_urls(path: Path, hole: Hole, selectors: Sequence[bytes]) -> Path:
    """One gopher URL a line (for curl through xargs)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(hole.url(s) + "\n" for s in selectors), encoding="latin-1")
    return path


def _title_and_month(article: bytes) -> tuple[bytes, bytes]:
    """The title line (without `` [1]``) and the YYYY-MM of an article."""
    mark = article.find(b" [1]\n")
    start = article.rfind(b"\n", 0, mark) + 1
    title = article[start:mark]
    date_at = article.find(b"\nDate: ") + 7
    return title, article[date_at : date_at + 7]


def _chunks(seq: Sequence[bytes], size: int) -> list[Sequence[bytes]]:
    return [seq[i : i + size] for i in range(0, len(seq), size)]


def build_hole(articles: int, port: int) -> Hole:
    """The benchmark hole with ``articles`` articles whose menus point at ``port``."""
    if articles < 1:
        raise ValueError("a hole needs at least one article")

    def link(item_type: bytes, display: str | bytes, selector: bytes) -> MenuItem:
        return link_line(item_type, display, selector, HOST, port)

    def menu(lines: Iterable[MenuItem]) -> bytes:
        return format_menu(tuple(lines)) + TERMINATOR

    replies: dict[bytes, bytes] = {}
    menus: list[bytes] = [ROOT, b"/feeds", b"/feeds/news", INDEX]
    documents: list[bytes] = [b"/about.txt"]
    root_menu = menu(
        [
            info_line("Welcome to the gophermirror benchmark hole"),
            info_line(f"{articles} articles, generated by bench/hole.py"),
            info_line(""),
            link(MENU, "Feeds", b"/feeds"),
            link(TEXT, "About this hole", b"/about.txt"),
            link_line(MENU, "Elsewhere (not followed)", b"/", "other.example", 70),
            link_line(b"h", "Project page", b"URL:https://example.org/gophermirror", "", 0),
            link_line(b"7", "Search (not followed)", b"/search", HOST, port),
        ]
    )
    replies[ROOT] = root_menu
    replies[b""] = root_menu
    replies[b"/about.txt"] = b"A synthetic hole for gophermirror's benchmark.\n"
    replies[b"/robots.txt"] = ROBOTS
    replies[b"/caps.txt"] = CAPS
    replies[b"robots.txt"] = ROBOTS
    replies[b"caps.txt"] = CAPS
    replies[b"/feeds"] = menu(
        [
            info_line("Feeds"),
            link(MENU, "News", b"/feeds/news"),
            link(MENU, "Back to the top", ROOT),
        ]
    )
    replies[b"/feeds/news"] = menu(
        [
            info_line("News"),
            link(MENU, "The benchmark feed", INDEX),
            link(MENU, "Up", b"/feeds"),
            link(MENU, "Back to the top", ROOT),
        ]
    )

    numbers = list(range(1, articles + 1))
    pages = _chunks([str(n).encode() for n in numbers], PER_PAGE)
    sectioned = len(pages) > PER_PAGE
    page_selectors: list[bytes] = []
    page_parents: list[bytes] = []
    sections: list[bytes] = []
    for index in range(len(pages)):
        if sectioned:
            section = INDEX + b"/s%02d" % (index // PER_PAGE + 1)
            if not sections or sections[-1] != section:
                sections.append(section)
            parent = section
        else:
            parent = INDEX
        page_selectors.append(parent + b"/%04d" % (index + 1))
        page_parents.append(parent)

    for index, page in enumerate(pages):
        selector = page_selectors[index]
        lines = [info_line(f"Page {index + 1} of {len(pages)}"), info_line("")]
        month = b""
        for number in page:
            article = sample_article(int(number))
            article_selector = selector + b"/" + number
            replies[article_selector] = article
            documents.append(article_selector)
            title, article_month = _title_and_month(article)
            if article_month != month:
                month = article_month
                lines.append(info_line(b"--- " + month + b" ---"))
            lines.append(link(TEXT, title, article_selector))
        lines.append(info_line(""))
        if index > 0:
            lines.append(link(MENU, "Previous page", page_selectors[index - 1]))
        if index + 1 < len(pages):
            lines.append(link(MENU, "Next page", page_selectors[index + 1]))
        lines += [link(MENU, "Up", page_parents[index]), link(MENU, "Back to the top", ROOT)]
        replies[selector] = menu(lines)

    top = sections if sectioned else page_selectors
    index_lines = [info_line("The benchmark feed"), info_line("")]
    index_lines += [link(MENU, s.rsplit(b"/", 1)[1], s) for s in top]
    index_lines += [link(MENU, "Up", b"/feeds/news"), link(MENU, "Back to the top", ROOT)]
    replies[INDEX] = menu(index_lines)
    for section in sections:
        children = [
            p for p, parent in zip(page_selectors, page_parents, strict=True) if parent == section
        ]
        lines = [info_line(f"Section {section.rsplit(b'/', 1)[1].decode()}")]
        lines += [link(MENU, p.rsplit(b"/", 1)[1], p) for p in children]
        lines += [link(MENU, "Up", INDEX), link(MENU, "Back to the top", ROOT)]
        replies[section] = menu(lines)
    menus += sections + page_selectors
    return Hole(port, replies, tuple(menus), tuple(documents), articles)


def big_menu(hole: Hole, lines: int) -> bytes:
    """A menu body of exactly ``lines`` CRLF lines, made of the hole's page menus."""
    source: list[bytes] = []
    for selector in hole.menus:
        reply = hole.replies[selector]
        source += reply[: -len(TERMINATOR)].split(b"\r\n")[:-1]
    if not source:
        raise ValueError("the hole has no menu lines")
    repeated = (source * (lines // len(source) + 1))[:lines]
    return b"".join(line + b"\r\n" for line in repeated)
