"""Smoke tests: the real peers serve the fixture hole the way docs/servers.md says.

Owns: checks of the facts the project relies on (pygopherd byte for byte,
gophernicus's text rewriting and menu framing, loopback-only binding, clean
stop).  Talks to the servers with a raw socket and with curl.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.peers import (
    FEED_DIR,
    FIRST_ARTICLE,
    MISC_FILES,
    Gophernicus,
    HoleOnDisk,
    PeerServer,
    build_fixture_hole,
    gopher_fetch,
    group_members,
    port_accepts,
    require_peer,
    sample_title,
)

peer = pytest.mark.peer


def menu_lines(reply: bytes) -> list[bytes]:
    """Lines of a menu reply without their CRLF (a final `.` line kept)."""
    assert reply.endswith(b"\r\n"), reply[-40:]
    return reply[:-2].split(b"\r\n")


def listening_addresses(port: int) -> set[str]:
    """Local addresses (hex, as in /proc/net/tcp*) with a LISTEN socket on ``port``."""
    found: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            address, port_hex = fields[1].split(":")
            if int(port_hex, 16) == port and fields[3] == "0A":
                found.add(address)
    return found


def curl(url: str) -> bytes:
    require_peer("curl")
    done = subprocess.run(
        ["curl", "-s", "--max-time", "10", url], capture_output=True, timeout=20, check=True
    )
    return done.stdout


# --- the hole itself -------------------------------------------------------------


def test_fixture_hole_matches_what_it_reports(tmp_path: Path) -> None:
    items = build_fixture_hole(tmp_path, n_articles=3, gophermaps=True)
    for selector, (item_type, data) in items.items():
        path = tmp_path / selector.lstrip("/")
        if item_type == "1":
            assert path.is_dir(), selector
            mapfile = path / "gophermap"
            assert data == (mapfile.read_bytes() if mapfile.exists() else b"")
            if mapfile.exists():
                assert mapfile.stat().st_mode & 0o7777 == 0o644  # never executable
        else:
            assert path.read_bytes() == data, selector
    article = items[f"/{FEED_DIR}/{FIRST_ARTICLE}"][1]
    assert not article.endswith(b"\n")
    assert b"\n[END]\n---\n[1] Url: " in article
    assert b"via Magical.Fish Gopher News Feeds:\ngopher://" in article
    assert sample_title(FIRST_ARTICLE).encode() + b" [1]\n" in article
    assert b"\n.\n" in items["/misc/dots.txt"][1]
    assert b"\x00" in items["/misc/random.bin"][1]
    assert items["/misc/pixel.png"][1].startswith(b"\x89PNG\r\n\x1a\n")
    assert b"\xe9" in items["/misc/latin1.txt"][1]
    root_map = items["/"][1]
    assert b"\tother.example\t70\n" in root_map
    assert b"\tURL:https://" in root_map
    assert b"\n7" in root_map


# --- pygopherd ----------------------------------------------------------------------


@peer
def test_pygopherd_sends_files_byte_for_byte(hole: HoleOnDisk, pygopherd_hole: PeerServer) -> None:
    for selector, (item_type, data) in hole.items.items():
        if item_type != "1":
            assert pygopherd_hole.fetch(selector.encode()) == data, selector


@peer
def test_pygopherd_menu_has_plus_fields_and_no_dot_line(pygopherd_hole: PeerServer) -> None:
    lines = menu_lines(pygopherd_hole.fetch(b"/misc"))
    assert b"." not in lines
    assert len(lines) == len(MISC_FILES)
    port = str(pygopherd_hole.port).encode()
    for line in lines:
        fields = line.split(b"\t")
        assert fields[2:] == [b"127.0.0.1", port, b"+"], line
    assert b"0dots\t/misc/dots.txt\t127.0.0.1\t" + port + b"\t+" in lines
    # names are sent as they are on disk, not %-encoded
    assert any(f[1] == b"/misc/file with spaces.txt" for f in (x.split(b"\t") for x in lines))


@peer
def test_pygopherd_missing_selector_is_one_type3_line(pygopherd_hole: PeerServer) -> None:
    reply = pygopherd_hole.fetch(b"/nope")
    assert reply == b"3'/nope' does not exist (no handler found)\t\terror.host\t1\r\n"


# --- gophernicus --------------------------------------------------------------------


@peer
def test_gophernicus_menu_ends_with_footer_and_dot(gophernicus_hole: PeerServer) -> None:
    lines = menu_lines(gophernicus_hole.fetch(b"/misc/"))
    assert lines[-1] == b"."
    assert b"Gophered by Gophernicus/" in lines[-2]
    assert lines[0] == b"i[/misc/]\tTITLE\tnull.host\t1"
    port = str(gophernicus_hole.port).encode()
    # names with spaces and non-ASCII are #octal-encoded in its listings
    assert any(b"\t/misc/file#040with#040spaces.txt\t127.0.0.1\t" + port in x for x in lines)
    assert any(b"\t/misc/caf#303#251.txt\t" in x for x in lines)


@peer
def test_gophernicus_rewrites_text_but_not_binaries(
    hole: HoleOnDisk, gophernicus_hole: PeerServer
) -> None:
    fetch = gophernicus_hole.fetch
    dots = hole.items["/misc/dots.txt"][1]
    assert fetch(b"/misc/dots.txt") == dots.replace(b"\n", b"\r\n")  # no dot-stuffing, no "."
    assert fetch(b"/misc/nonl.txt") == b"no final newline here\r\nsecond and last line\r\n"
    assert fetch(b"/misc/crlf.txt") == hole.items["/misc/crlf.txt"][1]
    latin1 = hole.items["/misc/latin1.txt"][1]
    assert fetch(b"/misc/latin1.txt") == latin1.decode("latin-1").encode().replace(b"\n", b"\r\n")
    for name in ("random.bin", "pixel.png"):
        assert fetch(f"/misc/{name}".encode()) == hole.items[f"/misc/{name}"][1], name
    # an article (no extension, no NUL) is text: CRLF plus a final CRLF
    article = hole.items[f"/{FEED_DIR}/{FIRST_ARTICLE}"][1]
    expected = article.replace(b"\n", b"\r\n") + b"\r\n"
    assert fetch(f"/{FEED_DIR}/{FIRST_ARTICLE}".encode()) == expected


@peer
def test_gophernicus_decodes_percent_and_octal_selectors(gophernicus_hole: PeerServer) -> None:
    want = b"a file whose name has spaces\r\n"
    for selector in (
        b"/misc/file with spaces.txt",
        b"/misc/file%20with%20spaces.txt",
        b"/misc/file#040with#040spaces.txt",
    ):
        assert gophernicus_hole.fetch(selector) == want, selector


@peer
def test_gophernicus_options_turn_off_footer_and_rewriting(
    hole: HoleOnDisk, start_peer: Callable[..., PeerServer]
) -> None:
    server = start_peer(
        "gophernicus", hole.root, extra_args=["-nf", "-nc", "-t", "9", "-e", "txt=9"]
    )
    assert server.fetch(b"/misc/").endswith(
        b"\t/misc/random.bin\t127.0.0.1\t%d\r\n.\r\n" % server.port
    )
    for selector in ("/misc/dots.txt", "/misc/latin1.txt", f"/{FEED_DIR}/{FIRST_ARTICLE}"):
        assert server.fetch(selector.encode()) == hole.items[selector][1], selector


# --- both, through curl, and the gophermap variant -----------------------------------


# Not pituophis: it answers the first chunk it receives and closes, and curl
# sends the selector and its CRLF in two writes, so the late CRLF makes the
# kernel reset the connection and curl sometimes fails with exit 56.
@peer
@pytest.mark.parametrize("which", ["gophernicus_hole", "pygopherd_hole"])
def test_curl_gets_what_a_raw_socket_gets(which: str, request: pytest.FixtureRequest) -> None:
    server: PeerServer = request.getfixturevalue(which)
    for selector, item_type in (("/misc/dots.txt", "0"), ("/misc/random.bin", "9"), ("/misc", "1")):
        assert curl(server.url(selector, item_type)) == server.fetch(selector.encode()), selector


@peer
def test_pituophis_sends_files_byte_for_byte(hole: HoleOnDisk, pituophis_hole: PeerServer) -> None:
    for selector in ("/misc/dots.txt", "/misc/latin1.txt", "/misc/random.bin", "/misc/pixel.png"):
        assert pituophis_hole.fetch(selector.encode()) == hole.items[selector][1], selector


@peer
@pytest.mark.parametrize("name", ["gophernicus", "pygopherd", "pituophis"])
def test_servers_listen_on_loopback_only(
    name: str, hole: HoleOnDisk, start_peer: Callable[..., PeerServer]
) -> None:
    server = start_peer(name, hole.root)
    assert listening_addresses(server.port) == {"0100007F"}  # 127.0.0.1, nothing else


@peer
@pytest.mark.parametrize("name", ["gophernicus", "pygopherd"])
def test_gophermap_variant_is_served(
    name: str, mapped_hole: HoleOnDisk, start_peer: Callable[..., PeerServer]
) -> None:
    server = start_peer(name, mapped_hole.root)
    root_lines = [x.split(b"\t") for x in menu_lines(server.fetch(b"/"))]
    assert [b"1Another hole", b"/", b"other.example", b"70"] in [f[:4] for f in root_lines]
    assert [b"hProject page", b"URL:https://example.org/gophermirror"] in [
        f[:2] for f in root_lines
    ]
    assert any(f[0] == b"7Search the hole" for f in root_lines)
    feed = [x.split(b"\t") for x in menu_lines(server.fetch(f"/{FEED_DIR}".encode()))]
    articles = [f[1] for f in feed if f[0][:1] == b"0"]
    assert articles[0] == f"/{FEED_DIR}/{FIRST_ARTICLE + 29}".encode()  # newest first
    assert len(articles) == 30
    assert [b"1Back to the top", b"/"] in [f[:2] for f in feed]


@peer
def test_stop_leaves_no_process_and_closes_the_port(hole: HoleOnDisk) -> None:
    require_peer("gophernicus")
    server = Gophernicus(hole.root)
    with server:
        assert gopher_fetch(server.port, b"/misc/nonl.txt").endswith(b"line\r\n")
        assert server.process is not None
        pgid = server.process.pid
        assert group_members(pgid)
    assert not group_members(pgid)
    assert not port_accepts(server.port)
    assert server.process is None
