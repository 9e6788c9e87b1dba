"""The sans-IO protocol: menu lines, menus, URLs, requests, framing."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gophermirror.errors import BadMenuLine, BadSelector, BadURL, TooLarge
from gophermirror.protocol import (
    Framing,
    GopherURL,
    MenuItem,
    RawLine,
    ResponseReader,
    check_link,
    decode_request,
    encode_request,
    error_message,
    format_menu,
    format_menu_line,
    format_url,
    parse_menu,
    parse_menu_line,
    parse_url,
    split_terminator,
)

# --- menu lines --------------------------------------------------------------


def test_four_field_line() -> None:
    item = parse_menu_line(b"0Title\t/sel\texample.org\t70", b"\r\n")
    assert item == MenuItem(b"0", b"Title", b"/sel", b"example.org", b"70", (), b"\r\n")
    assert item.port == 70
    check_link(item)


def test_gopher_plus_field_is_kept() -> None:
    line = b"1News\t/feeds/news\t127.0.0.1\t7070\t+"
    item = parse_menu_line(line, b"\r\n")
    assert item.extra == (b"+",)
    assert item.is_gopher_plus
    assert format_menu_line(item) == line + b"\r\n"


def test_info_line_without_tabs_parses() -> None:
    item = parse_menu_line(b"ijust text")
    assert item.type == b"i" and item.display == b"just text" and item.selector is None
    assert format_menu_line(item) == b"ijust text"


@pytest.mark.parametrize("port", [b"99999", b"-1", b"0", b"abc", b"", b"7O"])
def test_bad_ports_are_kept_raw_but_not_followable(port: bytes) -> None:
    item = parse_menu_line(b"0x\t/x\thost\t" + port)
    assert item.port is None
    assert item.port_raw == port
    with pytest.raises(BadMenuLine, match="bad port"):
        check_link(item, lineno=3)


def test_missing_fields_are_not_a_link() -> None:
    with pytest.raises(BadMenuLine, match="missing fields"):
        check_link(parse_menu_line(b"0x\t/x"))


@pytest.mark.parametrize("line", [b"", b"0a\x00b\t/\th\t70"])
def test_unreadable_lines_raise_typed_error(line: bytes) -> None:
    with pytest.raises(BadMenuLine):
        parse_menu_line(line, lineno=7)


def test_menu_with_mixed_endings_and_problems_round_trips() -> None:
    body = (
        b"iWelcome\t\terror.host\t1\r\n"
        b"\r\n"
        b"0Latin \xe9t\xe9\t/caf\xe9\tlocalhost\t70\n"
        b"1Bad\x00line\t/x\th\t70\r\n"
        b"9Bin\t/b\th\t70\t+\textra"
    )
    menu = parse_menu(body)
    assert format_menu(menu) == body
    assert len(menu.items) == 3
    assert [type(line) for line in menu.lines] == [MenuItem, RawLine, MenuItem, RawLine, MenuItem]
    assert menu.problems[0].lineno == 4
    assert menu.items[1].text() == "Latin été"
    assert menu.items[2].extra == (b"+", b"extra")


# Any bytes: parse never raises, and formatting gives back the input.
@given(st.binary(max_size=2000))
def test_parse_menu_round_trips_any_bytes(body: bytes) -> None:
    assert format_menu(parse_menu(body)) == body


menu_field = st.binary(max_size=40).map(
    lambda b: b.replace(b"\t", b"").replace(b"\n", b"").replace(b"\r", b"")
)


@given(
    st.binary(min_size=1, max_size=1).filter(lambda b: b not in b"\t\r\n"),
    st.lists(menu_field, min_size=0, max_size=7),
    st.sampled_from([b"\r\n", b"\n", b""]),
)
def test_format_parse_line_round_trip(item_type: bytes, fields: list[bytes], eol: bytes) -> None:
    line = item_type + b"\t".join(fields)
    try:
        item = parse_menu_line(line, eol)
    except BadMenuLine:
        assert b"\x00" in line
        return
    assert format_menu_line(item) == line + eol


# --- URLs ----------------------------------------------------------------------


def test_url_defaults() -> None:
    assert parse_url("gopher://magical.fish") == GopherURL("magical.fish", 70, b"1", b"")
    url = parse_url("gopher://magical.fish/1/feeds/news/eurasianet")
    assert (url.item_type, url.selector, url.port) == (b"1", b"/feeds/news/eurasianet", 70)
    assert format_url(url) == "gopher://magical.fish:70/1/feeds/news/eurasianet"


def test_url_search_question_mark_ipv6_and_tls() -> None:
    url = parse_url("gopher://h:7070/7/find%09two%20words")
    assert url.selector == b"/find" and url.search == b"two words"
    assert url.request() == b"/find\ttwo words\r\n"
    assert parse_url("gopher://h/0/a?b").selector == b"/a?b"  # ? is not a search
    v6 = parse_url("gopher://[::1]:7070/0/x")
    assert v6.host == "::1" and v6.port == 7070 and format_url(v6) == "gopher://[::1]:7070/0/x"
    assert parse_url("gophers://h/1/").tls


@pytest.mark.parametrize(
    "text",
    [
        "",
        "http://x/",
        "gopher://",
        "gopher://h:99999/",
        "gopher://h:x/",
        "gopher://h/0/a b",
        "gopher://u@h/",
        "gopher://[::1/",
        "gopher://h/0/a%0Db",
        "gopher://h/\u00e9x",
    ],
)
def test_bad_urls(text: str) -> None:
    with pytest.raises(BadURL):
        parse_url(text)


hosts = st.from_regex(r"\A[a-z0-9]([a-z0-9.-]{0,20}[a-z0-9])?\Z") | st.sampled_from(
    ["::1", "fe80::1"]
)
selectors = st.binary(max_size=60).filter(lambda b: not ({9, 10, 13} & set(b)))


@given(
    hosts,
    st.integers(1, 65535),
    st.sampled_from([b"0", b"1", b"7", b"9", b"I", b"h", b"+"]),
    selectors,
    st.none() | selectors,
    st.booleans(),
)
def test_url_round_trip(
    host: str, port: int, t: bytes, sel: bytes, search: bytes | None, tls: bool
) -> None:
    url = GopherURL(host, port, t, sel, search, None, tls)
    assert parse_url(format_url(url)) == url


# --- requests ------------------------------------------------------------------


def test_request_encoding() -> None:
    assert encode_request(b"/x y") == b"/x y\r\n"
    assert encode_request(b"", b"q") == b"\tq\r\n"
    with pytest.raises(BadSelector):
        encode_request(b"/a\tb")
    assert decode_request(b"/x\t+\r\n") == (b"/x", b"+", None)
    assert decode_request(b"/x\n") == (b"/x", None, None)


# --- framing -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "body", "term"),
    [
        (b"a\r\n.\r\n", b"a\r\n", b".\r\n"),
        (b"a\n.\n", b"a\n", b".\n"),
        (b"a\n.", b"a\n", b"."),
        (b".\r\n", b"", b".\r\n"),
        (b"a\n..\n", b"a\n..\n", b""),  # dot-stuffed line is body, not framing
        (b"a.\r\n", b"a.\r\n", b""),  # a dot at the end of a line is not a terminator
        (b"a\n.\nb\n", b"a\n.\nb\n", b""),  # a dot line in the middle stays
        (b"", b"", b""),
    ],
)
def test_split_terminator(data: bytes, body: bytes, term: bytes) -> None:
    assert split_terminator(data) == (body, term)


@given(st.binary(max_size=300))
def test_split_terminator_is_lossless(data: bytes) -> None:
    body, term = split_terminator(data)
    assert body + term == data


@given(st.binary(max_size=400), st.lists(st.integers(0, 400), max_size=8))
def test_reader_any_chunking_gives_same_response(data: bytes, cuts: list[int]) -> None:
    points = sorted({min(c, len(data)) for c in cuts})
    reader = ResponseReader(Framing.TEXT)
    last = 0
    for point in [*points, len(data)]:
        if data[last:point]:
            reader.receive_data(data[last:point])
        last = point
    reader.receive_data(b"")
    assert reader.response().raw == data
    assert (reader.response().body, reader.response().terminator) == split_terminator(data)


def test_reader_binary_keeps_dot_line_as_body() -> None:
    reader = ResponseReader(Framing.BINARY)
    reader.receive_data(b"abc\n.\r\n")
    reader.receive_data(b"")
    assert reader.response().body == b"abc\n.\r\n" and not reader.response().terminated


def test_reader_size_cap() -> None:
    reader = ResponseReader(Framing.TEXT, max_size=10, url="gopher://h/0/x")
    reader.receive_data(b"12345")
    with pytest.raises(TooLarge) as info:
        reader.receive_data(b"678901")
    assert "gopher://h/0/x" in str(info.value)


def test_error_item_detection() -> None:
    assert error_message(b"3'/nope' does not exist (no handler found)\t\terror.host\t1\r\n") == (
        b"'/nope' does not exist (no handler found)"
    )
    assert error_message(b"3Error\t\terror.host\t1\r\niMore\t\terror.host\t1\r\n") == b"Error"
    assert error_message(b"3 little pigs\n") is None  # text, not an error item
    assert error_message(b"3x\t\th\t1\r\n0Doc\t/d\th\t70\r\n") is None
