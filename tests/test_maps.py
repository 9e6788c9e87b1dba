"""Servable gophermaps: local links, each server's dialect, the root map, export.

Golden tests on awkward menus, properties checked against models of the
two servers' map parsers (as read in gophernicus 3.1.1 ``src/menu.c`` and
pygopherd 3.0.0 ``handlers/gophermap.py``), and, when the Debian peers are
installed, the default maps served by the real gophernicus and pygopherd.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import trio
from hypothesis import given, settings
from hypothesis import strategies as st

from gophermirror import maps
from gophermirror.errors import ConfigError, StoreError
from gophermirror.export import export
from gophermirror.paths import MAP_NAME, MENU_BODY_NAME, hole_dirname
from gophermirror.protocol import MENU, MenuItem, parse_menu, split_lines
from gophermirror.store import Entry, Store
from gophermirror.testing import local_link, sample_hole, serve_hole
from tests.peers import Gophernicus, Pygopherd, make_world_readable, peer_root_dir, require_peer
from tests.serve_helpers import store_hole

HOST = "127.0.0.1"
ORIGIN = 7070
HOLE = hole_dirname(HOST, ORIGIN)
LOCAL = b"\t127.0.0.1\t7070"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(tmp_path / "m", durable=False) as s:
        yield s


def put(store: Store, selector: bytes, item_type: bytes, body: bytes, term: bytes = b"") -> Entry:
    return store.put(
        host=HOST, port=ORIGIN, selector=selector, item_type=item_type, body=body, terminator=term
    ).entry


def map_of(store: Store, entry: Entry) -> bytes:
    return (store.root / entry.path / MAP_NAME).read_bytes()


# --------------------------------------------------------------------------
# Local links in the default map
# --------------------------------------------------------------------------

AWKWARD = (
    b"iWelcome\t\terror.host\t1\r\n"
    b"i\t\terror.host\t1\r\n"
    b"i   indented  \tfake\t(NULL)\t0\r\n"
    b"0Article\t/a.txt" + LOCAL + b"\r\n"
    b"1Sub menu\t/sub" + LOCAL + b"\t+\r\n"
    b"0Not mirrored\t/missing.txt" + LOCAL + b"\r\n"
    b"0Percent\t/p%20c#041" + LOCAL + b"\r\n"
    b"1Far root\t\tfar.example\t70\r\n"
    b"1Far plus\t/x\tfar.example\t70\t+\r\n"
    b"1Bad port\t/x\tfar.example\t7o\r\n"
    b"hWeb\tURL:https://example.org/\t\t0\r\n"
    b"=/bin/sh -c true\t/x\tfar.example\t70\r\n"
    b"\tstarts with a tab\t/x\tfar.example\t70\r\n"
    b"no tabs at all\n"
    b"0" + b"L" * 1100 + b"\t/a.txt" + LOCAL + b"\r\n"
    b"iNUL \x00 inside\t\terror.host\t1\r\n"
    b"ia lone \r CR\t\terror.host\t1\r\n"
    b"7Search\t/s" + LOCAL + b"\r\n"
    b"iLast line, no end\t\terror.host\t1"
)


@pytest.fixture
def awkward(store: Store) -> Entry:
    put(store, b"/a.txt", b"0", b"article\n")
    put(store, b"/sub", b"1", b"iEmpty\t\terror.host\t1\r\n", b".\r\n")
    put(store, b"/p%20c#041", b"0", b"percent\n")
    return put(store, b"/m", b"1", AWKWARD, b".\r\n")


def expected_lines(fmt: str) -> list[bytes]:
    """The awkward menu's lines (without endings) in dialect ``fmt``."""
    a, sub, pct = (
        f"/{HOLE}/a.txt".encode(),
        f"/{HOLE}/sub".encode(),
        f"/{HOLE}/p=2520c=23041".encode(),
    )
    gn, pg = fmt in ("default", "gophernicus"), fmt in ("default", "pygopherd")
    long_display = b"L" * (1020 - len(b"0\t" + a)) if gn else b"L" * 1100
    return [
        b"iWelcome\t\terror.host\t1",
        b"" if pg else b"i\t\terror.host\t1",
        b"i   indented  \tfake\t(NULL)\t0",
        b"0Article\t" + a,
        b"1Sub menu\t" + sub,
        b"0Not mirrored\t/missing.txt" + LOCAL,
        b"0Percent\t" + pct,
        b"1Far root\t/\tfar.example\t70" if pg else b"1Far root\t\tfar.example\t70",
        b"1Far plus\t/x\tfar.example\t70\t+",
        b"1Bad port\t/x\tfar.example\t7" if pg else b"1Bad port\t/x\tfar.example\t7o",
        b"hWeb\tURL:https://example.org/\t\t0",
        b"i=/bin/sh -c true /x far.example 70\t\terror.host\t1"
        if gn
        else b"=/bin/sh -c true\t/x\tfar.example\t70",
        b"i starts with a tab /x far.example 70\t\terror.host\t1"
        if pg
        else b"\tstarts with a tab\t/x\tfar.example\t70",
        b"no tabs at all",
        b"0" + long_display + b"\t" + a,
        b"iNUL  inside\t\terror.host\t1",
        b"ia lone   CR\t\terror.host\t1" if gn else b"ia lone \r CR\t\terror.host\t1",
        b"7Search\t/s" + LOCAL,
        b"iLast line, no end\t\terror.host\t1",
    ]


@pytest.mark.parametrize("fmt", ["default", "gophernicus", "pygopherd", "bucktooth"])
def test_dialects_golden(store: Store, awkward: Entry, fmt: str) -> None:
    notes = maps.MapNotes()
    maps.write_gophermap(store, awkward, fmt=fmt, notes=notes)
    written = map_of(store, awkward)
    assert [line for line, _eol in split_lines(written)] == expected_lines(fmt)
    # Line endings are the origin's (LF stays LF, the last line has none).
    assert written.endswith(b"no end\t\terror.host\t1")
    assert b"no tabs at all\n" in written
    assert notes.menus == 1
    if fmt == "gophernicus":
        assert notes.counts[maps.DIRECTIVE] == 1 and notes.counts[maps.LONG_LINE] == 1
        assert notes.counts[maps.PLUS_DROPPED_GN] == 2
    if fmt == "pygopherd":
        assert notes.counts[maps.BLANK_INFO] == 1 and notes.counts[maps.EMPTY_SELECTOR] == 1
        assert notes.counts[maps.BAD_PORT] == 1 and notes.counts[maps.BAD_START] == 1
    if fmt == "default":
        # The store escapes % and # in names, so no local link needs them.
        assert notes.counts[maps.PERCENT] == 0


def test_advertise_writes_host_port_and_pygopherd_plus(store: Store, awkward: Entry) -> None:
    adv = ("mirror.example", 7071)
    maps.write_gophermap(store, awkward, fmt="default", advertise=adv)
    lines = dict((line.split(b"\t", 1)[0], line) for line, _ in split_lines(map_of(store, awkward)))
    assert lines[b"0Article"] == f"0Article\t/{HOLE}/a.txt\tmirror.example\t7071".encode()
    assert lines[b"1Sub menu"] == f"1Sub menu\t/{HOLE}/sub\tmirror.example\t7071\t+".encode()
    # pygopherd: a local link that had "+" leaves host and port out, so pygopherd
    # adds its own "+"; one without gets them written, so pygopherd adds none.
    maps.write_gophermap(store, awkward, fmt="pygopherd", advertise=adv)
    lines = dict((line.split(b"\t", 1)[0], line) for line, _ in split_lines(map_of(store, awkward)))
    assert lines[b"0Article"] == f"0Article\t/{HOLE}/a.txt\tmirror.example\t7071".encode()
    assert lines[b"1Sub menu"] == f"1Sub menu\t/{HOLE}/sub".encode()


def test_unknown_format_is_refused(store: Store, awkward: Entry) -> None:
    with pytest.raises(ValueError, match="unknown map format"):
        maps.write_gophermap(store, awkward, fmt="geomyidae")
    with pytest.raises(ConfigError):
        export(store.root, "geomyidae")


async def test_maps_of_a_mirrored_hole(tmp_path: Path) -> None:
    hole = sample_hole(articles=3)
    hole.add_menu(
        b"/more", [local_link(b"0", "Skipped", b"/skipped.txt"), local_link(MENU, "Up", b"")]
    )
    hole.add(b"/skipped.txt", b"never fetched\n")
    root = tmp_path / "m"
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            port = await nursery.start(serve_hole, hole)
            await store_hole(root, port)
            await store_hole(root, port, start=b"/more", skip={b"/skipped.txt"})
            nursery.cancel_scope.cancel()
    hole_dir = hole_dirname(HOST, port)
    with Store.open(root) as store:
        assert maps.write_all_maps(store) == 5
        assert maps.write_all_maps(store, host="elsewhere.example", port=70) == 0
        maps.write_root_map(store)
        root_entry = store.get(HOST, port, b"", "menu")
        assert root_entry is not None
    own = b"\t127.0.0.1\t%d" % port
    top = (root / hole_dir / MAP_NAME).read_bytes()
    assert top == hole.replies[b""][: -len(b".\r\n")].replace(
        b"/feeds" + own, f"/{hole_dir}/feeds".encode()
    ).replace(b"/about.txt" + own, f"/{hole_dir}/about.txt".encode()).replace(
        b"iWelcome to the gophermirror sample hole\t\terror.host\t1\r\ni\t\terror.host\t1\r\n",
        b"iWelcome to the gophermirror sample hole\t\terror.host\t1\r\n\r\n",
    )
    more = (root / hole_dir / "more" / MAP_NAME).read_bytes()
    # The unfetched item of the same origin still points at the origin.
    assert (
        more == b"0Skipped\t/skipped.txt" + own + b"\r\n1Up\t" + f"/{hole_dir}".encode() + b"\r\n"
    )
    # The generated root lists the hole's root menu and the unlinked /more.
    root_map = (root / MAP_NAME).read_bytes()
    links = [i.selector for i in parse_menu(root_map).items if i.type == MENU]
    assert links == [f"/{hole_dir}".encode(), f"/{hole_dir}/more".encode()]
    # Every map is an ordinary 0644 file: gophernicus runs maps with an x bit.
    for path in root.rglob(MAP_NAME):
        assert path.stat().st_mode & 0o777 == 0o644


# --------------------------------------------------------------------------
# Properties against models of the servers' map parsers
# --------------------------------------------------------------------------


def pygopherd_model(data: bytes) -> int:
    """pygopherd 3.0.0's BuckGophermapHandler.prepare on ``data``; raises where it does."""
    entries = 0
    for raw in data.split(b"\n"):
        if not raw:
            continue
        line = raw.decode("utf-8", errors="surrogateescape")
        if "\t" in line:
            args = [arg.strip() for arg in line.split("\t")]
            if len(args) < 2 or not len(args[1]):
                args[1] = args[0][1:]
            selector = args[1]
            if selector[0] != "/" and selector[0:4] != "URL:":
                selector = "/d/" + selector
            _type = args[0][0]
            if len(args) >= 4 and len(args[3]):
                int(args[3])
        entries += 1
    return entries


def gophernicus_model(data: bytes) -> list[bytes]:
    """The lines gophernicus 3.1.1 reads (``fgets`` into a 1023-byte buffer, minus one)."""
    out = []
    rest = data
    while rest:
        newline = rest.find(b"\n", 0, maps.GOPHERNICUS_LINE_MAX)
        cut = newline + 1 if newline >= 0 else min(len(rest), maps.GOPHERNICUS_LINE_MAX)
        out.append(rest[:cut])
        rest = rest[cut:]
    return out


line_bytes = st.one_of(
    st.binary(max_size=40),
    st.builds(
        lambda t, d, s, h, p, x: b"\t".join([t + d, s, h, p, *x]),
        st.sampled_from([b"0", b"1", b"i", b"3", b"9", b"=", b"#", b".", b"*", b" ", b"!", b"-"]),
        st.binary(max_size=12) | st.sampled_from([b"", b" ", b"\x1c", b"\xc2\xa0"]),
        st.sampled_from([b"", b" ", b"/x", b"x", b"URL:http://e/", b"/.."]),
        st.sampled_from([b"", b"far.example", b"error.host", b"127.0.0.1"]),
        st.sampled_from([b"", b"70", b"7o", b" 70 ", b"+", b"0"]),
        st.lists(st.sampled_from([b"+", b"?", b"x"]), max_size=2),
    ),
    st.builds(lambda n: b"i" + b"x" * n + b"\t\terror.host\t1", st.integers(1000, 1100)),
)


@settings(max_examples=300)
@given(st.lists(line_bytes, max_size=12), st.sampled_from([b"\r\n", b"\n"]))
def test_default_map_is_safe_for_both_servers(lines: list[bytes], eol: bytes) -> None:
    body = eol.join(lines)
    menu = parse_menu(body)
    for fmt in ("default", "gophernicus", "pygopherd"):
        data = maps.render_map(menu.lines, None, fmt=fmt)
        assert b"\0" not in data
        # One map line per menu line: nothing merged, nothing split.
        assert len(list(split_lines(data))) == len(list(split_lines(body))) or not body
        if fmt in ("default", "gophernicus"):
            read = gophernicus_model(data)
            assert len(read) == len(list(split_lines(data)))
            for piece in read:
                assert not piece or piece[0] not in maps.GOPHERNICUS_DIRECTIVES, piece
        if fmt in ("default", "pygopherd"):
            pygopherd_model(data)  # never raises: the menu is never lost


ordinary = st.builds(
    lambda t, d, s, h, p: t + d + b"\t" + s + b"\t" + h + b"\t" + p,
    st.sampled_from([b"0", b"1", b"9", b"h", b"I", b"g"]),
    st.text("abcdefghij XYZ:-_", min_size=1, max_size=30).map(str.encode),
    st.text("abcdef/._-", max_size=20).map(lambda s: b"/" + s.encode()),
    st.sampled_from([b"far.example", b"gopher.floodgap.com", b"127.0.0.1"]),
    st.integers(1, 65535).map(lambda n: str(n).encode()),
)


@settings(max_examples=100)
@given(st.lists(ordinary, min_size=1, max_size=10))
def test_ordinary_foreign_lines_are_copied_in_every_dialect(lines: list[bytes]) -> None:
    body = b"\r\n".join(lines) + b"\r\n"
    menu = parse_menu(body)
    for fmt in maps.MAP_FORMATS:
        assert maps.render_map(menu.lines, None, fmt=fmt) == body


# --------------------------------------------------------------------------
# Menus for the built-in server
# --------------------------------------------------------------------------


def test_rewrite_menu_for_server(store: Store) -> None:
    put(store, b"/a.txt", b"0", b"a\n")
    put(store, b"/a b", b"0", b"space\n")
    other = store.put(
        host="other.example", port=70, selector=b"/a.txt", item_type=b"0", body=b"other\n"
    ).entry
    body = (
        b"0A\t/a.txt" + LOCAL + b"\t+\tmore\n"
        b"0Space\t/a b\t127.0.0.1\t7070\r\n"
        b"0Other hole\t/a.txt\tOTHER.example\t70\r\n"
        b"0Missing\t/zzz" + LOCAL + b"\r\n"
        b"iInfo\t/a.txt" + LOCAL + b"\r\n"
        b"1As a menu\t/a.txt" + LOCAL
    )
    menu = put(store, b"/m", b"1", body)
    index = maps.MirrorIndex.from_store(store)
    got = maps.rewrite_menu_for_server(
        store, menu, body, host="m.example", port=1, selector_style="origin"
    )
    other_path = f"/{other.path}".encode()
    assert got == (
        b"0A\t/a.txt\tm.example\t1\t+\tmore\n"
        b"0Space\t/a b\tm.example\t1\r\n"
        # Two holes: /a.txt resolves to the first (127.0.0.1), so the other
        # hole's item is linked by its path.
        b"0Other hole\t" + other_path + b"\tm.example\t1\r\n"
        b"0Missing\t/zzz" + LOCAL + b"\r\n"
        b"iInfo\t/a.txt" + LOCAL + b"\r\n"
        b"1As a menu\t/a.txt" + LOCAL
    )
    by_path = maps.rewrite_menu_for_server(
        index, menu, body, host="m.example", port=1, selector_style="path"
    )
    assert by_path.startswith(f"0A\t/{HOLE}/a.txt\tm.example\t1\t+\tmore\n".encode())
    assert f"0Space\t/{HOLE}/a=20b\tm.example\t1\r\n".encode() in by_path
    with pytest.raises(ValueError):
        maps.rewrite_menu_for_server(index, menu, body, host="h", port=1, selector_style="x")


def test_index_resolution_rules(store: Store) -> None:
    put(store, b"", b"1", b"iroot\r\n")
    put(store, b"/x", b"0", b"file x\n")
    put(store, b"/x", b"1", b"imenu x\r\n")
    put(store, b"/empty", b"0", b"")
    store.mark_failed(host=HOST, port=ORIGIN, selector=b"/never", item_type=b"0", error="refused")
    index = maps.MirrorIndex.from_store(store)
    x = index.resolve_selector(b"/x")
    assert x is not None and x.kind == "menu"  # a menu before a file
    assert index.resolve_selector(b"") is not None  # one hole: its root
    assert index.resolve_selector(b"/never") is None  # never stored
    assert index.resolve_selector(b"/empty") is not None  # an empty body is a body
    file_x = store.get(HOST, ORIGIN, b"/x", "file")
    assert file_x is not None
    assert index.resolve_path(f"/{file_x.path}".encode()) == file_x
    assert index.resolve_path(f"/{HOLE}/".encode()) == index.resolve_selector(b"")
    assert index.resolve_path(b"/\xff") is None and index.resolve_path(b"x") is None
    # A second hole: the empty selector is left to the generated root menu.
    store.put(host="b.example", port=70, selector=b"", item_type=b"1", body=b"ib\r\n")
    assert maps.MirrorIndex.from_store(store).resolve_selector(b"") is None


def test_fill_host_port() -> None:
    data = (
        b"iHello\t\terror.host\t1\r\n1Local\t/h/x\r\nplain text\n"
        b"0Far\t/y\tfar\t70\t+\n1Half\t/z\th2"
    )
    assert maps.fill_host_port(data, host="m", port=7) == (
        b"iHello\t\terror.host\t1\r\n1Local\t/h/x\tm\t7\r\niplain text\t\terror.host\t1\r\n"
        b"0Far\t/y\tfar\t70\t+\r\n1Half\t/z\th2\t7\r\n"
    )


# --------------------------------------------------------------------------
# The root map, start menus, generated menus, export
# --------------------------------------------------------------------------


def test_start_menus_and_root_map(store: Store) -> None:
    # Hole b: no root menu; /a links /a/b (and back), /c is linked by nobody.
    def put_b(selector: bytes, body: bytes) -> Entry:
        return store.put(
            host="b.example", port=70, selector=selector, item_type=b"1", body=body
        ).entry

    put_b(b"/a", b"1B\t/a/b\tb.example\t70\r\n")
    put_b(b"/a/b", b"1Back\t/a\tB.EXAMPLE\t70\r\n")
    put_b(b"/c", b"iAlone\r\n")
    put(store, b"", b"1", b"1Loop\t/l" + LOCAL + b"\r\n")
    put(store, b"/l", b"1", b"1Top\t" + LOCAL + b"\r\n")
    atom = store.root / "atom"
    atom.mkdir()
    (atom / "feed.xml").write_bytes(b"<feed/>")
    (atom / "bad name.xml").write_bytes(b"x")
    maps.write_root_map(store)
    top = (store.root / MAP_NAME).read_bytes()
    links = [(i.type, i.selector) for i in parse_menu(top).items if i.type != b"i"]
    b_dir = hole_dirname("b.example", 70)
    assert links == [
        (b"1", f"/{HOLE}".encode()),
        (b"1", f"/{b_dir}/c".encode()),  # linked by nobody
        (b"1", f"/{b_dir}/a".encode()),  # a cycle nothing else reaches: its shortest
        (b"0", b"/atom/feed.xml"),
    ]
    # Every menu in a cycle: the shortest selector is the start.
    cycle = [e for e in store.entries("b.example", 70) if e.selector in (b"/a", b"/a/b")]
    assert [e.selector for e in maps.start_menus(cycle, store.read_body)] == [b"/a"]
    # latest appears once there is one.
    entry = store.get(HOST, ORIGIN, b"/l", "menu")
    assert entry is not None
    maps.write_generated_menu(store, maps.LATEST_DIR, [maps.local_link(entry, "Loop menu")])
    maps.write_root_map(store)
    assert b"1Latest items\t/latest\r\n" in (store.root / MAP_NAME).read_bytes()


def test_generated_menu_exports_do_not_pile_up(store: Store) -> None:
    art = put(store, b"/p%c#123", b"0", b"body\n")
    maps.write_generated_menu(store, maps.LATEST_DIR, [maps.local_link(art, "Art")])
    latest = store.root / maps.LATEST_DIR
    assert (latest / MENU_BODY_NAME).read_bytes() == f"0Art\t/{HOLE}/p=25c=23123\r\n".encode()
    assert (latest / MAP_NAME).read_bytes() == f"0Art\t/{HOLE}/p=25c=23123\r\n".encode()
    store.commit()
    root = store.root
    store.close()
    for _ in range(2):
        report = export(root, "gophernicus")
        assert report.generated == (MAP_NAME, f"{maps.LATEST_DIR}/{MAP_NAME}")
        assert (latest / MAP_NAME).read_bytes() == f"0Art\t/{HOLE}/p=25c=23123\r\n".encode()
    export(root, "default")
    assert (latest / MAP_NAME).read_bytes() == f"0Art\t/{HOLE}/p=25c=23123\r\n".encode()


def test_export_report(store: Store, awkward: Entry) -> None:
    put(store, b"/notes.TXT", b"0", b"x\n")
    put(store, b"/prog.c", b"0", b"int x;\n")
    root = store.root
    store.close()
    report = export(root, "gophernicus", advertise=("mirror.example", 70))
    assert report.menus == 2 and report.format == "gophernicus"
    doc = json.loads(json.dumps(report.as_dict()))
    assert doc["menus"] == 2
    assert dict(report.changes)[maps.DIRECTIVE] == 1
    assert "-e c=9 -e txt=9" in report.advice[1]
    assert "gophernicus" in report.summary()
    article = (root / HOLE / "m" / MAP_NAME).read_bytes()
    assert f"0Article\t/{HOLE}/a.txt\tmirror.example\t70\r\n".encode() in article
    pyg = export(root, "pygopherd")
    assert any("BuckGophermapHandler" in line for line in pyg.advice)
    assert export(root, "bucktooth").changes == ((maps.NUL, 1),)
    # A store in use (a mirror run holds its lock) is not exported under it.
    with Store.open(root), pytest.raises(StoreError):
        export(root, "default")


# --------------------------------------------------------------------------
# The real servers (Debian peers)
# --------------------------------------------------------------------------


@pytest.fixture
def mirrored_for_peers() -> Iterator[tuple[Path, dict[str, bytes]]]:
    """A mirror of a hole with awkward names, default maps, readable by nobody.

    Yields (root, manifest path -> served bytes expected).
    """
    hole = sample_hole(articles=2)
    hole.add_menu(
        b"/odd",
        [
            local_link(b"0", "Space", b"/a b.txt"),
            local_link(b"9", "Binary", b"/data.bin"),
            local_link(b"0", "Latin-1", b"/caf\xe9"),
            MenuItem(b"=", b"run", b"/bin/true", b"far.example", b"70"),
            MenuItem(b"i", b"", b"", b"error.host", b"1"),
        ],
    )
    hole.add(b"/a b.txt", b"space\n")
    hole.add(b"/data.bin", bytes(range(256)) * 8)
    hole.add(b"/caf\xe9", b"caf\xe9\nno final newline")
    root = peer_root_dir("maps-")

    async def build() -> None:
        with trio.fail_after(30):
            async with trio.open_nursery() as nursery:
                port = await nursery.start(serve_hole, hole)
                await store_hole(root, port)
                await store_hole(root, port, start=b"/odd")
                nursery.cancel_scope.cancel()

    try:
        trio.run(build)
        expected = {}
        with Store.open(root) as s:
            maps.write_all_maps(s)
            maps.write_root_map(s)
            for entry in s.entries():
                if entry.kind == "file":
                    expected[entry.path] = s.read_body(entry)
        make_world_readable(root)
        yield root, expected
    finally:
        shutil.rmtree(root, ignore_errors=True)


def walk_served(
    fetch: Callable[[bytes], bytes], port: int, expected: dict[str, bytes]
) -> tuple[int, int]:
    """Follow every local link from the served root; returns (menus, files) seen.

    Asserts every file link serves the stored bytes and no menu holds an error.
    """
    menus = files = 0
    queue, seen = [b"/"], {b"/"}
    while queue and menus < 50:
        menu = parse_menu(fetch(queue.pop()))
        menus += 1
        assert not any(i.type == b"3" for i in menu.items)
        for item in menu.items:
            if item.host != HOST.encode() or item.port != port or item.selector in seen:
                continue
            assert item.selector is not None
            seen.add(item.selector)
            if item.type == MENU:
                queue.append(item.selector)
            elif item.type in (b"0", b"9"):
                path = item.selector.decode()[1:]
                assert fetch(item.selector) == expected[path], item.selector
                files += 1
    return menus, files


@pytest.mark.peer
def test_default_maps_serve_on_pygopherd(mirrored_for_peers: tuple[Path, dict[str, bytes]]) -> None:
    require_peer("pygopherd")
    root, expected = mirrored_for_peers
    handlers = "[gophermap.BuckGophermapHandler, file.FileHandler, dir.DirHandler]"
    with Pygopherd(root, settings={"handlers": handlers}) as server:
        menus, files = walk_served(server.fetch, server.port, expected)
        odd = server.fetch(
            f"/{next(p for p in expected if p.endswith('data.bin'))[:-9]}/odd".encode()
        )
    assert menus >= 6 and files == len(expected)
    assert b"i=run /bin/true far.example 70" in odd


@pytest.mark.peer
def test_default_maps_serve_on_gophernicus(
    mirrored_for_peers: tuple[Path, dict[str, bytes]],
) -> None:
    require_peer("gophernicus")
    root, expected = mirrored_for_peers
    # The options export recommends for unaltered text files.
    with Gophernicus(root, extra_args=["-nf", "-nx", "-nc", "-t", "9", "-e", "txt=9"]) as server:
        menus, files = walk_served(server.fetch, server.port, expected)
    assert menus >= 6 and files == len(expected)
