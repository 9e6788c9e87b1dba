"""Tests for gophermirror.article: the magical.fish layout, read and written."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gophermirror.article import (
    ArticleMeta,
    make_article,
    parse_article,
    parse_date,
    sample_article,
)

# An invented article in the magical.fish layout (same line structure as the
# real feed): curly quotes, an apostrophe in a name, no final newline.
FIXTURE = (
    "(C) Lowland Courier\n"
    "This story was originally published by Lowland Courier and is unaltered.\n"
    ". . . . . . . . . .\n"
    "\n"
    "\n"
    "\n"
    "Ferry “Mariposa” returns to the north quay after a winter’s repairs [1]\n"
    "\n"
    "['Hanna Vik', \"Peadar O'Rourke\"]\n"
    "\n"
    "Date: 2024-11\n"
    "\n"
    "The old ferry came back on Tuesday, a week later than promised.\n"
    "\n"
    "“She’s slower than before,” one deckhand said, “but she floats.”\n"
    "\n"
    "Timetables are posted at the quay café.\n"
    "\n"
    "[END]\n"
    "---\n"
    "[1] Url: https://courier.example.net/2024/11/mariposa-returns\n"
    "\n"
    "Published and (C) by Lowland Courier\n"
    "Content appears here under this condition or license: Creative Commons CC BY-SA 4.0.\n"
    "\n"
    "via Magical.Fish Gopher News Feeds:\n"
    "gopher://gopher.example.net/1/feeds/news/lowland/"
).encode()

FIXTURE_BODY = (
    "The old ferry came back on Tuesday, a week later than promised.\n"
    "\n"
    "“She’s slower than before,” one deckhand said, “but she floats.”\n"
    "\n"
    "Timetables are posted at the quay café."
)


def test_fixture_every_field() -> None:
    meta = parse_article(FIXTURE)
    assert meta == ArticleMeta(
        title="Ferry “Mariposa” returns to the north quay after a winter’s repairs",
        authors=("Hanna Vik", "Peadar O'Rourke"),
        date=datetime.date(2024, 11, 1),
        date_text="2024-11",
        original_url="https://courier.example.net/2024/11/mariposa-returns",
        licence="Creative Commons CC BY-SA 4.0.",
        publisher="Lowland Courier",
        via="gopher://gopher.example.net/1/feeds/news/lowland/",
        body=FIXTURE_BODY,
        recognised=True,
    )


def test_crlf_line_endings_give_the_same_metadata() -> None:
    assert parse_article(FIXTURE.replace(b"\n", b"\r\n")) == parse_article(FIXTURE)


def test_utf8_bom_is_ignored() -> None:
    assert parse_article(b"\xef\xbb\xbf" + FIXTURE) == parse_article(FIXTURE)


def test_no_authors_line() -> None:
    data = FIXTURE.replace(b"['Hanna Vik', \"Peadar O'Rourke\"]\n\n", b"")
    meta = parse_article(data)
    assert meta.recognised
    assert meta.authors == ()
    assert meta.title is not None and meta.title.startswith("Ferry")
    assert meta.date == datetime.date(2024, 11, 1)
    assert meta.body == FIXTURE_BODY


def test_empty_authors_list() -> None:
    meta = parse_article(FIXTURE.replace(b"['Hanna Vik', \"Peadar O'Rourke\"]", b"[]"))
    assert meta.authors == ()
    assert meta.date_text == "2024-11"
    assert meta.body == FIXTURE_BODY


def test_authors_with_escapes_and_both_quote_kinds() -> None:
    line = str(["Anne-Marie d'Arc", 'Tom "Tommy" Ng', "Back\\slash", "Zoë"]).encode()
    meta = parse_article(FIXTURE.replace(b"['Hanna Vik', \"Peadar O'Rourke\"]", line))
    assert meta.authors == ("Anne-Marie d'Arc", 'Tom "Tommy" Ng', "Back\\slash", "Zoë")


def test_escaped_surrogates_and_big_code_points_in_authors() -> None:
    line = b"['Lone \\ud800 half', 'Fish \\U0001f41f', 'Too big \\U00110000']"
    meta = parse_article(FIXTURE.replace(b"['Hanna Vik', \"Peadar O'Rourke\"]", line))
    assert meta.authors == ("Lone \ufffd half", "Fish \U0001f41f", "Too big \\U00110000")


def test_malformed_authors_list_is_split_on_commas() -> None:
    meta = parse_article(
        FIXTURE.replace(b"['Hanna Vik', \"Peadar O'Rourke\"]", b"['Hanna Vik, Ola]")
    )
    assert meta.authors == ("Hanna Vik", "Ola")
    assert meta.date == datetime.date(2024, 11, 1)


def test_full_date() -> None:
    meta = parse_article(FIXTURE.replace(b"Date: 2024-11", b"Date: 2024-11-19"))
    assert meta.date == datetime.date(2024, 11, 19)
    assert meta.date_text == "2024-11-19"


def test_unparseable_date_keeps_the_text() -> None:
    meta = parse_article(FIXTURE.replace(b"Date: 2024-11", b"Date: sometime in autumn"))
    assert meta.date is None
    assert meta.date_text == "sometime in autumn"
    assert meta.body == FIXTURE_BODY


def test_missing_end_marker_stops_the_body_at_the_footer() -> None:
    meta = parse_article(FIXTURE.replace(b"[END]\n", b""))
    assert meta.recognised
    assert meta.body == FIXTURE_BODY
    assert meta.original_url == "https://courier.example.net/2024/11/mariposa-returns"
    assert meta.via == "gopher://gopher.example.net/1/feeds/news/lowland/"


def test_missing_footer() -> None:
    meta = parse_article(FIXTURE[: FIXTURE.index(b"[END]")])
    assert meta.recognised
    assert meta.body == FIXTURE_BODY
    assert meta.original_url is None
    assert meta.licence is None
    assert meta.via is None
    assert meta.publisher == "Lowland Courier"  # from the header


def test_latin1_bytes_still_parse() -> None:
    text = FIXTURE.decode().replace("’", "'").replace("“", '"').replace("”", '"')
    meta = parse_article(text.encode("latin-1"))
    assert meta.recognised
    assert meta.title == 'Ferry "Mariposa" returns to the north quay after a winter\'s repairs'
    assert meta.body.endswith("quay caf\ufffd.")  # é was one latin-1 byte
    assert meta.original_url == "https://courier.example.net/2024/11/mariposa-returns"


def test_nul_bytes_do_not_break_parsing() -> None:
    meta = parse_article(FIXTURE.replace(b"north quay", b"north\x00quay"))
    assert meta.title is not None and "\x00" in meta.title
    assert meta.licence == "Creative Commons CC BY-SA 4.0."


def test_empty_input() -> None:
    meta = parse_article(b"")
    assert not meta.recognised
    assert meta.body == ""
    assert meta.title is None
    assert meta.authors == ()


@pytest.mark.parametrize(
    "data",
    [
        b"Just a plain text file.\nWith two lines.\n",
        b"iWelcome\tfake\t(NULL)\t0\r\n1Feeds\t/feeds\texample.org\t70\r\n.\r\n",
        b". . . . .\nno other landmark here\n",
        b"\xff\xfe\x00\x00garbage",
    ],
)
def test_other_formats_are_not_recognised(data: bytes) -> None:
    meta = parse_article(data)
    assert not meta.recognised
    assert meta.body == data.decode("utf-8", errors="replace")
    assert meta.title is None
    assert meta.original_url is None


def test_every_truncation_parses() -> None:
    for cut in range(len(FIXTURE) + 1):
        meta = parse_article(FIXTURE[:cut])
        assert isinstance(meta, ArticleMeta)
    title_end = FIXTURE.index(b" [1]\n") + 4
    assert parse_article(FIXTURE[:title_end]).title == parse_article(FIXTURE).title
    url_end = FIXTURE.index(b"mariposa-returns") + len(b"mariposa-returns")
    assert parse_article(FIXTURE[:url_end]).original_url == parse_article(FIXTURE).original_url


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-07", datetime.date(2025, 7, 1)),
        ("2025-7", datetime.date(2025, 7, 1)),
        ("2025-07-21", datetime.date(2025, 7, 21)),
        ("2025/07/21", datetime.date(2025, 7, 21)),
        ("2025-07-21T10:30:00Z", datetime.date(2025, 7, 21)),
        ("2025-07-21 10:30", datetime.date(2025, 7, 21)),
        ("2025", datetime.date(2025, 1, 1)),
        ("21 July 2025", datetime.date(2025, 7, 21)),
        ("July 21, 2025", datetime.date(2025, 7, 21)),
        ("Jul 21st, 2025", datetime.date(2025, 7, 21)),
        ("July 2025", datetime.date(2025, 7, 1)),
        ("Mon, 21 Jul 2025 10:30:00 +0000", datetime.date(2025, 7, 21)),
        ("  2025-07  ", datetime.date(2025, 7, 1)),
        ("2025-13", None),
        ("2025-02-30", None),
        ("0000-01-01", None),
        ("Smarch 3, 2025", None),
        ("", None),
        ("yesterday", None),
        ("٢٠٢٥-٠٧", None),
    ],
)
def test_parse_date(text: str, expected: datetime.date | None) -> None:
    assert parse_date(text) == expected


@given(st.text(max_size=60))
def test_parse_date_never_raises(text: str) -> None:
    result = parse_date(text)
    assert result is None or isinstance(result, datetime.date)


# --- never raises, whatever the bytes ----------------------------------------
def _check_invariants(meta: ArticleMeta, data: bytes) -> None:
    assert isinstance(meta, ArticleMeta)
    assert isinstance(meta.body, str)
    assert all(isinstance(name, str) and name for name in meta.authors)
    for value in (meta.title, meta.date_text, meta.original_url, meta.licence):
        assert value is None or ("\n" not in value and "\r" not in value)
    for value in (meta.publisher, meta.via):
        assert value is None or ("\n" not in value and "\r" not in value)
    if meta.date is not None:
        assert meta.date_text is not None
    if not meta.recognised:
        assert meta.body == data.decode("utf-8", errors="replace")
        assert meta.title is None


@given(st.binary(max_size=2000))
def test_any_bytes(data: bytes) -> None:
    _check_invariants(parse_article(data), data)


@given(st.binary(max_size=300), st.binary(max_size=300))
def test_fixture_wrapped_in_junk(prefix: bytes, suffix: bytes) -> None:
    data = prefix + FIXTURE + suffix
    _check_invariants(parse_article(data), data)


FIXTURE_LINES = FIXTURE.split(b"\n")
_line_index = st.integers(min_value=0, max_value=len(FIXTURE_LINES) - 1)
_edit = st.one_of(
    st.tuples(st.just("drop"), _line_index, _line_index),
    st.tuples(st.just("duplicate"), _line_index, _line_index),
    st.tuples(st.just("swap"), _line_index, _line_index),
    st.tuples(st.just("mangle"), _line_index, st.integers(0, 255)),
)


@given(st.lists(_edit, max_size=12), st.sampled_from([b"\n", b"\r\n", b"\r"]))
def test_mutated_article_lines(edits: list[tuple[str, int, int]], newline: bytes) -> None:
    lines = list(FIXTURE_LINES)
    for kind, first, second in edits:
        if not lines:
            break
        i, j = first % len(lines), second % len(lines)
        if kind == "drop":
            del lines[i]
        elif kind == "duplicate":
            lines.insert(j, lines[i])
        elif kind == "swap":
            lines[i], lines[j] = lines[j], lines[i]
        else:
            lines[i] = lines[i][: len(lines[i]) // 2] + bytes([second]) + lines[i][1:]
    data = newline.join(lines)
    _check_invariants(parse_article(data), data)


@given(st.permutations(FIXTURE_LINES))
def test_shuffled_article_lines(lines: list[bytes]) -> None:
    data = b"\n".join(lines)
    _check_invariants(parse_article(data), data)


@given(st.integers(min_value=0, max_value=100_000), st.data())
def test_sample_articles_with_random_cuts(n: int, data: st.DataObject) -> None:
    article = sample_article(n)
    cut = data.draw(st.integers(min_value=0, max_value=len(article)))
    _check_invariants(parse_article(article[:cut]), article[:cut])


# --- writing: make_article and sample_article -----------------------------------
def test_make_article_layout() -> None:
    data = make_article(
        3,
        title="Lanterns on the “long pier”",
        authors=["Ivo Brandt", "Maeve O'Hara"],
        date="2024-11",
        url="https://courier.example.net/lanterns",
        paragraphs=["First paragraph.", "Second — and last — paragraph."],
        via="gopher://gopher.example.net/1/feeds/news/lowland/",
        publisher="Lowland Courier",
        licence="Creative Commons CC BY-SA 4.0.",
    )
    lines = data.decode("utf-8").split("\n")
    assert lines[:12] == [
        "(C) Lowland Courier",
        "This story was originally published by Lowland Courier and is unaltered.",
        ". . . . . . . . . .",
        "",
        "",
        "",
        "Lanterns on the “long pier” [1]",
        "",
        "['Ivo Brandt', \"Maeve O'Hara\"]",
        "",
        "Date: 2024-11",
        "",
    ]
    assert lines[-9:] == [
        "[END]",
        "---",
        "[1] Url: https://courier.example.net/lanterns",
        "",
        "Published and (C) by Lowland Courier",
        "Content appears here under this condition or license: Creative Commons CC BY-SA 4.0.",
        "",
        "via Magical.Fish Gopher News Feeds:",
        "gopher://gopher.example.net/1/feeds/news/lowland/",
    ]
    assert not data.endswith(b"\n")


def test_make_article_round_trip() -> None:
    data = make_article(
        41,
        title="Snow closes the “salt road” again",
        authors=[],
        date=datetime.date(2025, 1, 14),
        url="https://courier.example.net/salt-road",
        paragraphs=["One.", "Two “quoted” words.", "Three’s company."],
        via="gopher://gopher.example.net/1/feeds/news/lowland/",
    )
    meta = parse_article(data)
    assert meta.recognised
    assert meta.title == "Snow closes the “salt road” again"
    assert meta.authors == ()
    assert meta.date == datetime.date(2025, 1, 14)
    assert meta.date_text == "2025-01-14"
    assert meta.original_url == "https://courier.example.net/salt-road"
    assert meta.body == "One.\n\nTwo “quoted” words.\n\nThree’s company."
    assert meta.publisher == "Example Gazette"
    assert meta.licence == "Creative Commons CC BY 4.0."
    assert meta.via == "gopher://gopher.example.net/1/feeds/news/lowland/"


_words = st.text(
    alphabet=st.characters(
        categories=["L", "N", "P", "S", "Zs"], exclude_characters="\x85\u2028\u2029"
    ),
    min_size=1,
    max_size=40,
).map(str.strip)
_starts_with_letter = st.tuples(st.characters(categories=["L"]), _words).map("".join)
_name = st.text(
    alphabet=st.characters(exclude_categories=["Cs", "Zs", "Zl", "Zp"]), min_size=1, max_size=20
).filter(lambda s: s.strip() == s)
_url = st.from_regex(r"https://[a-z]{1,10}\.example/[a-z0-9/-]{0,20}", fullmatch=True)
_dates = st.one_of(
    st.dates(min_value=datetime.date(1, 1, 1)),
    st.dates().map(lambda d: f"{d:%Y-%m}" if d.year >= 1000 else d.isoformat()),
)


@given(
    title=_starts_with_letter.filter(lambda s: not s.endswith("[1]")),
    authors=st.lists(_name, max_size=4),
    date=_dates,
    url=_url,
    paragraphs=st.lists(_starts_with_letter, max_size=5),
)
def test_make_article_round_trip_property(
    title: str,
    authors: list[str],
    date: datetime.date | str,
    url: str,
    paragraphs: list[str],
) -> None:
    data = make_article(
        1,
        title=title,
        authors=authors,
        date=date,
        url=url,
        paragraphs=paragraphs,
        via="gopher://h/",
    )
    meta = parse_article(data)
    assert meta.recognised
    assert meta.title == title
    assert meta.authors == tuple(authors)
    expected = date if isinstance(date, datetime.date) else parse_date(date)
    assert meta.date == expected
    assert meta.original_url == url
    assert meta.body == "\n\n".join(paragraphs)
    assert meta.via == "gopher://h/"


def test_sample_article_is_deterministic_and_varied() -> None:
    articles = [sample_article(n) for n in range(60)]
    assert articles == [sample_article(n) for n in range(60)]
    assert len(set(articles)) == 60
    assert all(2000 <= len(a) <= 6500 for a in articles)
    assert len({len(a) // 500 for a in articles}) >= 5  # lengths spread over 2-6 KB
    assert all(not a.endswith(b"\n") for a in articles)
    assert any(b"\xe2\x80\x9c" in a for a in articles)  # a left curly quote
    texts = [a.decode("utf-8") for a in articles]  # strict: valid UTF-8
    assert any(any(ord(c) > 0xFF for c in t) for t in texts)


def test_sample_article_parses_back() -> None:
    metas = [parse_article(sample_article(n)) for n in range(40)]
    assert all(m.recognised for m in metas)
    assert all(m.title and not m.title.endswith("[1]") for m in metas)
    assert all(m.date is not None for m in metas)
    assert {len(m.authors) for m in metas} == {0, 1, 2, 3}
    assert any("'" in name for m in metas for name in m.authors)
    months = [(m.date.year, m.date.month) for m in metas if m.date]
    assert months == sorted(months)  # the date moves forward with n
    assert {m.date_text is not None and len(m.date_text) for m in metas} == {7, 10}
    assert all(m.body and "[END]" not in m.body for m in metas)
    assert all(m.original_url and m.original_url.endswith(f"-{n}") for n, m in enumerate(metas))
    assert parse_article(sample_article(5, via="gopher://127.0.0.1:7070/1/f/")).via == (
        "gopher://127.0.0.1:7070/1/f/"
    )


# --- the real article from magical.fish, when this checkout has it -------------------
SHARED_SAMPLE = Path(__file__).resolve().parents[1].parent / (
    "shared/samples/eurasianet-article.txt"
)


@pytest.mark.skipif(not SHARED_SAMPLE.is_file(), reason="shared sample article not present")
def test_real_magical_fish_article() -> None:
    data = SHARED_SAMPLE.read_bytes()
    meta = parse_article(data)
    assert meta.recognised
    assert meta.title == "While Russia barks, Azerbaijan shows no fear of Moscow’s bite"
    assert meta.authors == ("Irakli Machaidze", "Mahmud Rzayev")
    assert meta.date == datetime.date(2025, 7, 1)
    assert meta.date_text == "2025-07"
    assert meta.original_url == (
        "https://eurasianet.org/while-russia-barks-azerbaijan-shows-no-fear-of-moscows-bite"
    )
    assert meta.licence == "Creative Commons CC BY-ND 4.0."
    assert meta.publisher == "EurasiaNet"
    assert meta.via == "gopher://magical.fish/1/feeds/news/eurasianet/"
    assert meta.body.startswith("The site of the crash")
    assert "[END]" not in meta.body and "Date:" not in meta.body
    assert meta.body == meta.body.strip()
    assert parse_article(data.replace(b"\n", b"\r\n")) == meta
