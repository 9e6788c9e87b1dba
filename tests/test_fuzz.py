"""Fuzzing what a hostile peer controls: wire bytes, URLs, robots.txt, requests.

What tests/test_protocol.py, test_paths.py and test_article.py already cover
(any bytes through ``parse_menu`` round-trip, ``split_terminator`` lossless,
reader chunking, URL round trip of valid values, escape safety and
collision-free paths, the article parser on any bytes) is not repeated here.
Added: menu-shaped bodies through both of ``parse_menu``'s paths against a
line-by-line reference, every parser on any input raising only its typed
error, URLs from any text, robots.txt and caps.txt, and the built-in server
under many concurrent random and hostile connections.

Every test here is marked ``fuzz``: ``make test`` runs them with the default
hypothesis profile (short), ``make fuzz`` with ``HYPOTHESIS_PROFILE=fuzz``.
"""

from __future__ import annotations

import os
import socket
import struct
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gophermirror.errors import BadMenuLine, BadSelector, BadURL, TooLarge
from gophermirror.paths import hole_dirname
from gophermirror.politeness import Robots, parse_caps, parse_robots
from gophermirror.protocol import (
    TERMINATORS,
    Framing,
    MenuItem,
    RawLine,
    ResponseReader,
    decode_request,
    encode_request,
    error_message,
    format_menu,
    format_menu_line,
    format_url,
    parse_menu,
    parse_menu_line,
    parse_url,
    split_lines,
    split_terminator,
    url_for_item,
)
from gophermirror.serve import serve
from gophermirror.store import Store
from gophermirror.testing import sample_hole

pytestmark = pytest.mark.fuzz

FUZZING = os.environ.get("HYPOTHESIS_PROFILE") == "fuzz"


def examples(short: int, long: int) -> int:
    """``short`` examples under ``make test``, ``long`` under ``make fuzz``."""
    return long if FUZZING else short


# --------------------------------------------------------------------------
# Menus and responses
# --------------------------------------------------------------------------

# Pieces a broken menu is made of: fields, separators, line ends, dots, NULs.
piece = st.sampled_from(
    [b"\t", b"\r\n", b"\n", b"\r", b".", b"..", b"\x00", b"i", b"0", b"1", b"3", b"+", b"70",
     b"99999", b"-1", b"host", b"/sel", b"", b" ", b"\xff\xfe", b"\xc3\xa9", b"URL:x"]
)  # fmt: skip
menu_bodies = st.lists(piece | st.binary(max_size=8), max_size=80).map(b"".join)
crlf_menus = st.lists(
    st.lists(piece | st.binary(max_size=6), max_size=8).map(
        lambda parts: b"".join(parts).replace(b"\n", b"").replace(b"\x00", b"")
    ),
    max_size=30,
).map(lambda lines: b"".join(line + b"\r\n" for line in lines))
"""CRLF-only bodies with no NUL: the fast path of ``parse_menu``."""


def reference_menu(body: bytes) -> tuple[MenuItem | RawLine, ...]:
    """``parse_menu`` done the slow way: one ``parse_menu_line`` per line."""
    lines: list[MenuItem | RawLine] = []
    for lineno, (line, eol) in enumerate(split_lines(body), 1):
        try:
            lines.append(parse_menu_line(line, eol, lineno=lineno))
        except BadMenuLine as exc:
            lines.append(RawLine(line, eol, exc.message.split(": ", 1)[-1], lineno))
    return tuple(lines)


@given(menu_bodies | crlf_menus | crlf_menus.map(lambda b: b + b"0tail\tno\tending"))
def test_parse_menu_matches_the_line_by_line_reference(body: bytes) -> None:
    menu = parse_menu(body)
    assert menu.lines == reference_menu(body)
    assert format_menu(menu) == body
    for line in menu.problems:
        assert line.reason != "empty line" and line.lineno >= 1


@given(st.binary(max_size=300), st.sampled_from([b"\r\n", b"\n", b""]))
def test_parse_menu_line_any_bytes(line: bytes, eol: bytes) -> None:
    try:
        item = parse_menu_line(line, eol, lineno=3)
    except BadMenuLine as exc:
        assert not line or b"\x00" in line
        assert exc.lineno == 3
        return
    assert format_menu_line(item) == line + eol
    assert item.port is None or 0 < item.port <= 65535


@given(menu_bodies)
def test_links_from_any_menu_are_typed(body: bytes) -> None:
    for item in parse_menu(body).items:
        try:
            url = url_for_item(item)
        except BadMenuLine:
            continue
        assert 0 < url.port <= 65535 and url.selector == item.selector
        assert url.host == url.host.lower()


@given(menu_bodies | st.binary(max_size=500))
def test_split_terminator_only_splits_a_final_dot_line(data: bytes) -> None:
    body, term = split_terminator(data)
    assert body + term == data
    assert term in (*TERMINATORS, b"")
    if term:
        assert body == b"" or body.endswith(b"\n")


@given(menu_bodies | st.binary(max_size=500))
def test_error_message_any_bytes(body: bytes) -> None:
    message = error_message(body)
    if message is not None:
        assert body.startswith(b"3") and b"\t" not in message and b"\n" not in message


@given(st.binary(max_size=200))
def test_decode_request_any_bytes(data: bytes) -> None:
    selector, search, plus = decode_request(data)
    assert b"\t" not in selector
    if plus is not None:
        assert search is not None


no_controls = st.binary(max_size=60).map(
    lambda b: b.replace(b"\t", b"").replace(b"\r", b"").replace(b"\n", b"")
)


@given(no_controls, st.none() | no_controls)
def test_request_round_trip(selector: bytes, search: bytes | None) -> None:
    assert decode_request(encode_request(selector, search)) == (selector, search, None)


@given(st.binary(max_size=60), st.none() | st.binary(max_size=20))
def test_encode_request_refuses_only_controls(selector: bytes, search: bytes | None) -> None:
    try:
        request = encode_request(selector, search)
    except BadSelector:
        assert {9, 10, 13} & set(selector + (search or b""))
        return
    assert request.endswith(b"\r\n") and request.count(b"\n") == 1


@given(
    st.lists(st.binary(min_size=1, max_size=64), max_size=20),
    st.integers(0, 600),
    st.sampled_from(list(Framing)),
)
def test_reader_size_cap_is_exact(chunks: list[bytes], cap: int, framing: Framing) -> None:
    reader = ResponseReader(framing, cap)
    total = 0
    for chunk in chunks:
        total += len(chunk)
        if total > cap:
            with pytest.raises(TooLarge):
                reader.receive_data(chunk)
            return
        reader.receive_data(chunk)
    reader.receive_data(b"")
    assert reader.response().raw == b"".join(chunks)


# --------------------------------------------------------------------------
# URLs
# --------------------------------------------------------------------------

url_texts = st.builds(
    lambda scheme, host, port, path: scheme + host + port + path,
    st.sampled_from(["gopher://", "gophers://", "GOPHER://", "", "http://", "gopher:/"]),
    st.sampled_from(["h", "example.org", "[::1]", "[fe80::1", "127.0.0.1", "", "a@b", "H.X"])
    | st.text(max_size=12),
    st.sampled_from(["", ":70", ":0", ":65535", ":65536", ":x", ":", ":007"]),
    st.sampled_from(["", "/", "/1", "/0/a%09b%09c", "/7/q%09", "/0%2e%2e/x", "/9%ZZ", "/é"])
    | st.text(max_size=30).map(lambda t: "/" + t),
)


@given(url_texts | st.text(max_size=80))
def test_parse_url_any_text(text: str) -> None:
    try:
        url = parse_url(text)
    except BadURL:
        return
    assert url.host and 0 < url.port <= 65535 and len(url.item_type) == 1
    assert not {9, 10, 13} & set(url.selector)
    again = parse_url(format_url(url))
    assert again == url
    try:
        url.request()
    except BadSelector:  # a search part with a control byte in it
        assert url.search is not None and {9, 10, 13} & set(url.search)


# --------------------------------------------------------------------------
# robots.txt and caps.txt from a hostile host
# --------------------------------------------------------------------------

robots_lines = st.lists(
    st.sampled_from(
        [b"User-agent: *", b"User-agent: gophermirror", b"User-agent: other", b"Disallow: /",
         b"Disallow: /a", b"Disallow:", b"Allow: /a/b", b"Crawl-delay: 5", b"Crawl-delay: nan",
         b"Crawl-delay: -1", b"Crawl-delay: 1e309", b"Crawl-delay: 99999", b"# comment", b"",
         b"\xff\xfe", b"Disallow: /\x00", b"crawl-DELAY:3"]
    )
    | st.binary(max_size=30),
    max_size=30,
)  # fmt: skip


@given(robots_lines, st.sampled_from([b"\n", b"\r\n", b"\r"]), st.binary(max_size=40))
def test_robots_any_file(lines: list[bytes], eol: bytes, selector: bytes) -> None:
    robots = parse_robots(eol.join(lines))
    assert robots.crawl_delay is None or 0 <= robots.crawl_delay <= 60
    assert isinstance(robots.allows(selector), bool)
    assert all(robots.disallow) and all(robots.allow)


def reference_allows(robots: Robots, selector: bytes) -> bool:
    """Longest matching prefix wins, Allow on a tie; "/p/" covers "/p" (linear scan)."""

    def matches(prefix: bytes) -> bool:
        return selector.startswith(prefix) or (prefix.endswith(b"/") and selector == prefix[:-1])

    best, allowed = -1, True
    for prefix in robots.disallow:
        if matches(prefix) and len(prefix) > best:
            best, allowed = len(prefix), False
    for prefix in robots.allow:
        if matches(prefix) and len(prefix) >= best:
            best, allowed = len(prefix), True
    return allowed


prefixes = st.lists(
    st.sampled_from([b"", b"/", b"/a", b"/a/", b"/a/b", b"/ab", b"a", b"/a/b/"])
    | st.binary(max_size=4),
    max_size=8,
)


@given(
    prefixes,
    prefixes,
    st.sampled_from([b"", b"/", b"/a", b"/a/b", b"/ab/c", b"a"]) | st.binary(max_size=6),
)
def test_robots_matching_equals_the_linear_rule(
    disallow: list[bytes], allow: list[bytes], selector: bytes
) -> None:
    robots = Robots(tuple(disallow), tuple(allow))
    assert robots.allows(selector) == reference_allows(robots, selector)


@given(st.lists(st.binary(max_size=30), max_size=20).map(lambda ls: b"\n".join([b"CAPS", *ls])))
def test_caps_any_file(data: bytes) -> None:
    caps = parse_caps(data)
    assert caps is not None
    assert caps.software is None or isinstance(caps.software, str)
    assert parse_caps(data[4:]) is None or data[4:].lstrip(b"\r\n").startswith(b"CAPS")


# --------------------------------------------------------------------------
# A hostile menu, stored: its gophermaps and its rewrite for the server
# --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def map_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    """One store for every example: a few items a fuzzed menu may link to."""
    with Store.open(tmp_path_factory.mktemp("maps") / "root", durable=False) as store:
        for selector in (b"/a", b"/sel", b"/x y", b"/caf\xe9", b""):
            item_type = b"1" if selector == b"" else b"0"
            store.put(host="host", port=70, selector=selector, item_type=item_type, body=b"x")
        yield store


linked_menus = st.lists(
    st.builds(
        lambda t, d, s, h, p, e: t + d + b"\t" + s + b"\t" + h + b"\t" + p + e,
        st.sampled_from([b"0", b"1", b"i", b"3", b"h", b"9", b"+", b"=", b"#", b"!", b" "]),
        st.binary(max_size=12),
        st.sampled_from([b"/a", b"/sel", b"/x y", b"/caf\xe9", b"", b"/", b"URL:x"])
        | st.binary(max_size=10),
        st.sampled_from([b"host", b"HOST", b"other", b"", b" host "]),
        st.sampled_from([b"70", b"070", b"99999", b"-1", b"", b"x"]),
        st.sampled_from([b"\r\n", b"\n", b"\t+\r\n", b"\r", b""]),
    )
    | piece,
    max_size=25,
).map(b"".join)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(linked_menus | menu_bodies)
def test_maps_of_any_menu(map_store: Store, body: bytes) -> None:
    """Writing gophermaps and serving a stored menu never raise, whatever the origin sent."""
    from gophermirror import maps

    entry = map_store.put(
        host="host", port=70, selector=b"/fuzzed", item_type=b"1", body=body
    ).entry
    for fmt in maps.MAP_FORMATS:
        maps.write_gophermap(map_store, entry, fmt=fmt, advertise=("mirror", 7070))
        path = map_store.root / maps.map_relpath(entry)
        assert path.resolve().is_relative_to(map_store.root.resolve())
    index = maps.MirrorIndex.from_store(map_store)
    served = maps.rewrite_menu_for_server(index, entry, body, host="mirror", port=7070)
    assert served.count(b"\n") == body.count(b"\n")
    map_store.commit()


# --------------------------------------------------------------------------
# The built-in server, hammered
# --------------------------------------------------------------------------

HOST = "127.0.0.1"
ORIGIN_PORT = 7070
SECRET = b"THE SECRET NEXT TO THE MIRROR ROOT\n"
CONNECTIONS = 200
"""Concurrent connections per example (the drawn behaviours, repeated)."""


@pytest.fixture(scope="module")
def served_store(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Path, dict[bytes, bytes]]]:
    """A store holding the sample hole, a secret beside ROOT and symlinks to it inside.

    Yields (root, selector -> the exact bytes the server must send for it).
    """
    base = tmp_path_factory.mktemp("served")
    root = base / "root"
    (base / "secret.txt").write_bytes(SECRET)
    hole = sample_hole(articles=3)
    hole.bind(HOST, ORIGIN_PORT)
    replies: dict[bytes, bytes] = {}
    with Store.open(root, durable=False) as store:
        for selector, reply in hole.replies.items():
            item_type = (
                b"1"
                if selector in (b"", b"/feeds", b"/feeds/news") or selector.endswith(b"eurasianet")
                else b"0"
            )
            body, term = split_terminator(reply) if item_type == b"1" else (reply, b"")
            store.put(
                host=HOST, port=ORIGIN_PORT, selector=selector, item_type=item_type,
                body=body, terminator=term,
            )  # fmt: skip
            if item_type == b"0":
                replies[selector] = reply
        for selector in (b"/evil", b"/sub/evil"):
            store.put(host=HOST, port=ORIGIN_PORT, selector=selector, item_type=b"0", body=b"x")
    hole_dir = root / hole_dirname(HOST, ORIGIN_PORT)
    (hole_dir / "evil").unlink()
    (hole_dir / "evil").symlink_to(base / "secret.txt")
    (hole_dir / "sub" / "evil").unlink()
    (hole_dir / "sub").rmdir()
    (hole_dir / "sub").symlink_to(base)
    (hole_dir / "to-secret").symlink_to("../../secret.txt")
    yield root, replies


def hostile_selectors(root: Path) -> list[bytes]:
    """Selectors aimed at the secret beside ROOT, the symlinks to it, the manifest."""
    hole = b"/" + hole_dirname(HOST, ORIGIN_PORT).encode()
    up = [
        b"/../secret.txt",
        b"../../secret.txt",
        b"%2e%2e/secret.txt",
        b"..\\secret.txt",
        b"/%2e%2e/%2e%2e/secret.txt",
        b"/atom/../../secret.txt",
        b"/latest/../../secret.txt",
    ]
    links = [b"/evil", b"/sub/evil", b"/sub/secret.txt", b"/to-secret"]
    return [
        *up, *links, *(hole + s for s in up), *(hole + s for s in links),
        str(root.parent / "secret.txt").encode(), b"/.gophermirror/manifest.sqlite",
        hole + b"/.gophermirror-menu", b"\x00", b"/about.txt\x00/../../secret.txt", b"", b"/",
        b"latest",
    ]  # fmt: skip


@st.composite
def client_actions(draw: st.DrawFn, selectors: list[bytes]) -> tuple[str, bytes]:
    """One connection's behaviour: what it sends, and how it ends."""
    selector = draw(
        st.sampled_from(selectors)
        | st.binary(max_size=40)
        | st.sampled_from(selectors).flatmap(lambda s: st.binary(max_size=8).map(lambda b: s + b))
    )
    how = draw(st.sampled_from(["line", "line", "lf", "eof", "partial", "reset", "silent",
                                "drip", "flood", "search"]))  # fmt: skip
    return how, selector


async def act(port: int, how: str, selector: bytes) -> bytes:
    """Be one client; return what the server sent (b"" when nothing, or cut off)."""
    stream = await trio.open_tcp_stream(HOST, port)
    data = bytearray()
    try:
        if how == "line":
            await stream.send_all(selector + b"\r\n")
        elif how == "lf":
            await stream.send_all(selector + b"\n")
        elif how == "search":
            await stream.send_all(selector + b"\tword\t+\r\n")
        elif how == "eof":
            await stream.send_all(selector)
            await stream.send_eof()
        elif how == "partial":
            await stream.send_all(selector[: len(selector) // 2])
            return b""
        elif how == "reset":
            await stream.send_all(selector)
            stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            return b""
        elif how == "silent":
            await trio.sleep(0.05)
            return b""
        elif how == "drip":
            for byte in selector[:20] + b"\r\n":
                await stream.send_all(bytes([byte]))
                await trio.sleep(0.001)
        elif how == "flood":
            await stream.send_all(selector + b"A" * 20_000)
        while len(data) < 1 << 20:
            chunk = await stream.receive_some(65536)
            if not chunk:
                break
            data += chunk
    except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
        pass
    finally:
        await trio.aclose_forcefully(stream)
    return bytes(data)


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@settings(
    max_examples=examples(4, 200),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data(), cap=st.sampled_from([16, 256]))
async def test_server_under_many_hostile_connections(
    served_store: tuple[Path, dict[bytes, bytes]], data: st.DataObject, cap: int
) -> None:
    root, replies = served_store
    selectors = [*replies, *hostile_selectors(root)]
    drawn = data.draw(st.lists(client_actions(selectors), min_size=1, max_size=40))
    actions = (drawn * (CONNECTIONS // len(drawn) + 1))[:CONNECTIONS]
    before = open_fds()
    got: list[tuple[str, bytes, bytes]] = []
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            port = await nursery.start(
                partial(
                    serve, root, port=0, quiet=True, log=lambda _line: None,
                    max_connections=cap, request_timeout=0.5,
                )
            )  # fmt: skip
            settled = open_fds()

            async def one(how: str, selector: bytes) -> None:
                with trio.move_on_after(10):
                    got.append((how, selector, await act(port, how, selector)))

            async with trio.open_nursery() as clients:
                for how, selector in actions:
                    clients.start_soon(one, how, selector)
            # Never outside the mirror; known items exactly as stored.
            for how, selector, reply in got:
                assert SECRET not in reply, (how, selector)
                assert b"SQLite format" not in reply, (how, selector)
                answered = reply and not reply.startswith(b"3Server busy")
                if how in ("line", "lf", "search") and selector in replies and answered:
                    assert reply == replies[selector], (how, selector)
            # Still serving, and every connection's descriptor closed again.
            with trio.fail_after(10):
                while True:
                    answer = await act(port, "line", b"/about.txt")
                    if not answer.startswith(b"3Server busy"):
                        break
                    await trio.sleep(0.1)
            assert answer == replies[b"/about.txt"]
            with trio.fail_after(10):
                while open_fds() > settled:
                    await trio.sleep(0.05)
            nursery.cancel_scope.cancel()
    assert open_fds() == before
