"""Tests for gophermirror.atom: every rendered feed is valid Atom 1.0.

Three independent checks: the RELAX NG schema of RFC 4287 Appendix B
(tests/data/atom.rng, via lxml), the RFC's two Schematron rules (as XPath
here, since RELAX NG validators skip them), and feedparser reading it back.
"""

from __future__ import annotations

import datetime
from pathlib import Path

import feedparser
import pytest
from hypothesis import given
from hypothesis import strategies as st
from lxml import etree

from gophermirror.article import parse_article, sample_article
from gophermirror.atom import ATOM_NAMESPACE, AtomEntry, AtomFeed, render_atom

SCHEMA = etree.RelaxNG(etree.parse(str(Path(__file__).parent / "data" / "atom.rng")))
NS = {"atom": ATOM_NAMESPACE}
NOW = datetime.datetime(2025, 7, 21, 10, 30, 5, tzinfo=datetime.UTC)
ORIGIN = "gopher://gopher.example.org/1/feeds/news/sample/"
MIRROR = "gopher://127.0.0.1:7070/1/feeds/news/sample/"


def check_valid(data: bytes) -> etree._Element:
    """Parse ``data`` strictly, validate it against RFC 4287; return the root."""
    assert data.startswith(b'<?xml version="1.0" encoding="utf-8"?>\n')
    data.decode("utf-8")  # strict
    root = etree.fromstring(data, etree.XMLParser(resolve_entities=False, no_network=True))
    SCHEMA.assertValid(root)
    # The Schematron rules of RFC 4287 Appendix B, as XPath.
    if root.tag == f"{{{ATOM_NAMESPACE}}}feed":
        assert root.xpath(
            "boolean(atom:author or not(atom:entry[not(atom:author)]))", namespaces=NS
        )
    for entry in root.iter(f"{{{ATOM_NAMESPACE}}}entry"):
        assert entry.xpath(
            "boolean(atom:link[@rel='alternate'] or atom:link[not(@rel)] or atom:content)",
            namespaces=NS,
        )
        assert entry.xpath(
            "boolean(atom:author or ../atom:author or atom:source/atom:author)", namespaces=NS
        )
    return root


def read_back(data: bytes) -> feedparser.FeedParserDict:
    parsed = feedparser.parse(data)
    assert parsed.bozo == 0, parsed.get("bozo_exception")
    assert parsed.version == "atom10"
    return parsed


def sample_feed(numbers: tuple[int, ...] = (0, 1, 10)) -> AtomFeed:
    """Entries from sample articles; number 10 has no authors."""
    entries = []
    for n in numbers:
        meta = parse_article(sample_article(n))
        assert meta.title is not None and meta.original_url is not None
        entries.append(
            AtomEntry(
                id=f"{ORIGIN}{n}",
                title=meta.title,
                updated=NOW,
                published=NOW - datetime.timedelta(days=n),
                authors=meta.authors,
                links=[
                    ("alternate", meta.original_url),
                    ("via", f"{ORIGIN}{n}"),
                    ("related", f"{MIRROR}{n}"),
                ],
                summary=meta.body.split("\n")[0],
                content=meta.body,
                rights=meta.licence,
            )
        )
    return AtomFeed(
        id=ORIGIN,
        title="Sample news",
        updated=NOW,
        links=[("self", "https://mirror.example.org/feeds/sample.xml"), ("via", ORIGIN)],
        entries=entries,
        subtitle="Followed by gophermirror",
    )


def entry_element(root: etree._Element, index: int = 0) -> etree._Element:
    entries = root.findall("atom:entry", NS)
    return entries[index]


def test_sample_feed_is_valid_and_reads_back() -> None:
    feed = sample_feed()
    data = render_atom(feed)
    check_valid(data)
    parsed = read_back(data)
    assert parsed.feed.id == ORIGIN
    assert parsed.feed.title == "Sample news"
    assert parsed.feed.subtitle == "Followed by gophermirror"
    assert parsed.feed.generator == "gophermirror"
    assert parsed.feed.updated_parsed[:6] == (2025, 7, 21, 10, 30, 5)
    assert [(link.rel, link.href) for link in parsed.feed.links] == list(feed.links)
    assert len(parsed.entries) == 3
    for got, want in zip(parsed.entries, feed.entries, strict=True):
        assert got.id == want.id
        assert got.title == want.title
        assert tuple(a.name for a in got.get("authors", [])) == want.authors
        assert [(link.rel, link.href) for link in got.links] == list(want.links)
        assert got.content[0].type == "text/plain"
        assert got.content[0].value == want.content
        assert got.summary == want.summary
        assert got.rights == want.rights
        assert want.published is not None
        assert got.published_parsed[:3] == want.published.timetuple()[:3]
        assert got.updated == "2025-07-21T10:30:05Z"


def test_feed_author_only_when_an_entry_lacks_one() -> None:
    feed = sample_feed((0, 1, 10, 11))
    assert {len(e.authors) == 0 for e in feed.entries} == {True, False}
    root = check_valid(render_atom(feed))
    assert root.findtext("atom:author/atom:name", namespaces=NS) == "Sample news"
    assert read_back(render_atom(feed)).feed.author == "Sample news"

    everyone = [e for e in feed.entries if e.authors]
    root = check_valid(render_atom(AtomFeed(ORIGIN, "Sample news", NOW, (), everyone)))
    assert root.find("atom:author", NS) is None


def test_blank_author_names_count_as_none() -> None:
    entry = AtomEntry(id="urn:x:1", title="t", updated=NOW, authors=("", "  ", "\x00\x01"))
    root = check_valid(render_atom(AtomFeed("urn:x", "Feed", NOW, (), (entry,))))
    assert entry_element(root).find("atom:author", NS) is None
    assert root.findtext("atom:author/atom:name", namespaces=NS) == "Feed"


def test_fallback_author_when_the_feed_title_is_blank() -> None:
    entry = AtomEntry(id="urn:x:1", title="t", updated=NOW)
    root = check_valid(render_atom(AtomFeed("urn:x", " \x02 ", NOW, (), (entry,))))
    assert root.findtext("atom:author/atom:name", namespaces=NS) == "gophermirror"


def test_empty_feed() -> None:
    root = check_valid(render_atom(AtomFeed("urn:x", "Nothing yet", NOW, (), ())))
    assert root.find("atom:author", NS) is None
    assert read_back(render_atom(AtomFeed("urn:x", "Nothing yet", NOW, (), ()))).entries == []


def test_entry_without_content_or_alternate_gets_empty_content() -> None:
    bare = AtomEntry(id="urn:x:1", title="t", updated=NOW, authors=("A",), links=[("via", ORIGIN)])
    linked = AtomEntry(
        id="urn:x:2", title="t", updated=NOW, authors=("A",), links=[("alternate", "https://e/")]
    )
    root = check_valid(render_atom(AtomFeed("urn:x", "F", NOW, (), (bare, linked))))
    content = entry_element(root, 0).find("atom:content", NS)
    assert content is not None and content.get("type") == "text" and not content.text
    assert entry_element(root, 1).find("atom:content", NS) is None


def test_links_second_alternate_becomes_related_and_duplicates_go() -> None:
    entry = AtomEntry(
        id="urn:x:1",
        title="t",
        updated=NOW,
        authors=("A",),
        links=[
            ("alternate", "https://a.example/"),
            ("", "https://b.example/"),
            ("via", ORIGIN),
            ("via", ORIGIN),
        ],
    )
    root = check_valid(render_atom(AtomFeed("urn:x", "F", NOW, (), (entry,))))
    links = [(link.get("rel"), link.get("href")) for link in entry_element(root).iter()]
    links = [pair for pair in links if pair[1] is not None]
    assert links == [
        ("alternate", "https://a.example/"),
        ("related", "https://b.example/"),
        ("via", ORIGIN),
    ]


def test_illegal_characters_are_dropped_and_cr_survives() -> None:
    entry = AtomEntry(
        id="urn:x:1",
        title="a\x00b\x0bc\ud800d\ufffee\uffff\U0001f41f",
        updated=NOW,
        authors=("Zoë\x07",),
        content="line one\r\nline two\rthree\t<&>]]>",
        rights="CC\x1b BY",
    )
    root = check_valid(render_atom(AtomFeed("urn:x", "F\x0c", NOW, (), (entry,))))
    element = entry_element(root)
    assert element.findtext("atom:title", namespaces=NS) == "abcde\U0001f41f"
    assert element.findtext("atom:author/atom:name", namespaces=NS) == "Zoë"
    assert element.findtext("atom:content", namespaces=NS) == "line one\r\nline two\rthree\t<&>]]>"
    assert element.findtext("atom:rights", namespaces=NS) == "CC BY"
    assert root.findtext("atom:title", namespaces=NS) == "F"


def test_ids_and_hrefs_are_percent_encoded_where_iris_need_it() -> None:
    entry = AtomEntry(
        id="gopher://h.example/0/misc/file with spaces.txt",
        title="t",
        updated=NOW,
        authors=("A",),
        links=[("related", 'gopher://h.example/0/café "ñandú"<>\x00\ud800.txt')],
    )
    root = check_valid(render_atom(AtomFeed("gopher://h.example/1/misc", "F", NOW, (), (entry,))))
    element = entry_element(root)
    assert element.findtext("atom:id", namespaces=NS) == (
        "gopher://h.example/0/misc/file%20with%20spaces.txt"
    )
    link = element.find("atom:link", NS)
    assert link is not None
    assert link.get("href") == "gopher://h.example/0/café%20%22ñandú%22%3C%3E%00%ED%A0%80.txt"


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (datetime.datetime(2025, 7, 21, 10, 30, 5, 999999), "2025-07-21T10:30:05Z"),
        (
            datetime.datetime(
                2025, 7, 21, 12, 30, tzinfo=datetime.timezone(datetime.timedelta(hours=2))
            ),
            "2025-07-21T10:30:00Z",
        ),
        (
            datetime.datetime(
                2025,
                1,
                1,
                0,
                15,
                tzinfo=datetime.timezone(datetime.timedelta(hours=-5, minutes=-30)),
            ),
            "2025-01-01T05:45:00Z",
        ),
        (datetime.datetime(999, 3, 4, 5, 6, 7, tzinfo=datetime.UTC), "0999-03-04T05:06:07Z"),
        (
            datetime.datetime(1, 1, 1, 1, 0, tzinfo=datetime.timezone(datetime.timedelta(hours=5))),
            "0001-01-01T00:00:00Z",
        ),
        (
            datetime.datetime(
                9999, 12, 31, 22, 0, tzinfo=datetime.timezone(datetime.timedelta(hours=-5))
            ),
            "9999-12-31T23:59:59Z",
        ),
    ],
)
def test_timestamps(moment: datetime.datetime, expected: str) -> None:
    entry = AtomEntry(id="urn:x:1", title="t", updated=moment, published=moment, authors=("A",))
    root = check_valid(render_atom(AtomFeed("urn:x", "F", moment, (), (entry,))))
    assert root.findtext("atom:updated", namespaces=NS) == expected
    assert entry_element(root).findtext("atom:published", namespaces=NS) == expected


def test_schema_rejects_broken_feeds() -> None:
    """The schema is strict enough that a structural mistake fails check_valid."""
    good = render_atom(sample_feed((0,)))
    check_valid(good)
    broken = [
        good.replace(b"<id>gopher://gopher.example.org/1/feeds/news/sample/</id>", b""),
        good.replace(b"<updated>", b"<updated>x", 1),
        good.replace(b"<title>Sample news</title>", b"<title>Sample news</title><title/>"),
        good.replace(b"<generator>", b"<generatr>").replace(b"</generator>", b"</generatr>"),
        good.replace(b'<content type="text">', b'<content type="words">'),
        good.replace(b"</entry>", b"</entry><id>late</id>"),
    ]
    for data in broken:
        assert data != good
        with pytest.raises(etree.DocumentInvalid):
            check_valid(data)


# --- arbitrary text ---------------------------------------------------------------
def xml_legal(text: str) -> str:
    """An independent statement of XML 1.0's Char production."""

    def ok(c: str) -> bool:
        o = ord(c)
        return (
            o in (0x9, 0xA, 0xD)
            or 0x20 <= o <= 0xD7FF
            or 0xE000 <= o <= 0xFFFD
            or 0x10000 <= o <= 0x10FFFF
        )

    return "".join(c for c in text if ok(c))


any_text = st.text(st.characters(exclude_categories=()), max_size=40)
any_datetime = st.datetimes(
    timezones=st.one_of(
        st.none(),
        st.just(datetime.UTC),
        st.builds(
            datetime.timezone,
            st.timedeltas(
                min_value=-datetime.timedelta(hours=23, minutes=59),
                max_value=datetime.timedelta(hours=23, minutes=59),
            ),
        ),
    )
)
any_entry = st.builds(
    AtomEntry,
    id=any_text,
    title=any_text,
    updated=any_datetime,
    published=st.none() | any_datetime,
    authors=st.lists(any_text, max_size=3),
    links=st.lists(st.tuples(any_text, any_text), max_size=3),
    summary=st.none() | any_text,
    content=st.none() | any_text,
    rights=st.none() | any_text,
)


@given(
    title=any_text,
    subtitle=st.none() | any_text,
    feed_id=any_text,
    updated=any_datetime,
    links=st.lists(st.tuples(any_text, any_text), max_size=3),
    entries=st.lists(any_entry, max_size=3),
)
def test_arbitrary_text_still_renders_valid_atom(
    title: str,
    subtitle: str | None,
    feed_id: str,
    updated: datetime.datetime,
    links: list[tuple[str, str]],
    entries: list[AtomEntry],
) -> None:
    feed = AtomFeed(feed_id, title, updated, links, entries, subtitle=subtitle)
    data = render_atom(feed)
    root = check_valid(data)
    assert root.findtext("atom:title", namespaces=NS) == xml_legal(title)
    for element, entry in zip(root.findall("atom:entry", NS), entries, strict=True):
        assert element.findtext("atom:title", namespaces=NS) == xml_legal(entry.title)
        if entry.content is not None:
            assert element.findtext("atom:content", namespaces=NS) == xml_legal(entry.content)
        names = [n.text or "" for n in element.findall("atom:author/atom:name", NS)]
        assert names == [xml_legal(a) for a in entry.authors if xml_legal(a).strip()]
    parsed = read_back(data)
    assert len(parsed.entries) == len(entries)
