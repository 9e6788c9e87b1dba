"""The built-in server: byte-exact re-serving, selector resolution, hostile clients.

Every test builds a real store by fetching a loopback hole (testing.serve_hole)
with the real client, serves it with ``serve`` on 127.0.0.1 port 0 and talks
to it over real sockets.
"""

from __future__ import annotations

import os
import re
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import trio

from gophermirror import maps
from gophermirror.client import fetch
from gophermirror.errors import ServerError, StoreError
from gophermirror.paths import hole_dirname
from gophermirror.protocol import MENU, TEXT, GopherURL, info_line, link_line, parse_menu
from gophermirror.serve import serve
from gophermirror.store import Store
from gophermirror.testing import MemoryHole, local_link, sample_hole, serve_hole
from tests.serve_helpers import LIMITS, open_fds, raw_fetch, store_hole

HOST = "127.0.0.1"
SECRET = b"top secret outside the mirror\n"


@asynccontextmanager
async def running(root: Path, **options: Any) -> AsyncIterator[tuple[int, list[str]]]:
    """Serve ``root`` on a free port; yields (port, log lines); stops on exit."""
    logs: list[str] = []
    async with trio.open_nursery() as nursery:
        port = await nursery.start(partial(serve, root, port=0, log=logs.append, **options))
        yield port, logs
        nursery.cancel_scope.cancel()


@asynccontextmanager
async def origin(hole: MemoryHole) -> AsyncIterator[int]:
    """Serve ``hole`` on a free port until the block ends."""
    async with trio.open_nursery() as nursery:
        yield await nursery.start(serve_hole, hole)
        nursery.cancel_scope.cancel()


def local_fields(data: bytes, origin_port: int, mirror_port: int) -> bytes:
    """The origin's reply with its own host:port fields changed to the mirror's."""
    return data.replace(
        b"\t%s\t%d" % (HOST.encode(), origin_port), b"\t%s\t%d" % (HOST.encode(), mirror_port)
    )


async def mirrored_sample(
    root: Path, articles: int = 6
) -> tuple[MemoryHole, int, dict[bytes, bytes]]:
    """The sample hole stored in ``root``: (hole, origin port, selector -> raw reply)."""
    hole = sample_hole(articles=articles)
    async with origin(hole) as port:
        raw = await store_hole(root, port)
    return hole, port, raw


# --------------------------------------------------------------------------
# Byte for byte
# --------------------------------------------------------------------------


async def test_every_item_is_served_as_the_origin_sent_it(tmp_path: Path) -> None:
    with trio.fail_after(30):
        root = tmp_path / "m"
        hole, oport, raw = await mirrored_sample(root)
        assert len(raw) == 4 + 1 + 6 and set(raw) == set(hole.replies)
        async with running(root) as (port, logs):
            for selector, origin_bytes in raw.items():
                got = await raw_fetch(port, selector + b"\r\n")
                # Articles are identical; menus differ only in local host:port fields.
                assert got == local_fields(origin_bytes, oport, port), selector
                if not origin_bytes.startswith((b"i", b"1")):
                    assert got == origin_bytes
            # The same through the project's client, with a gophers-less URL.
            result = await fetch(GopherURL(HOST, port, MENU, b"/feeds/news/eurasianet"), LIMITS)
            assert result.terminator == b".\r\n"
    assert len(logs) == 1 + len(raw) + 1
    pattern = re.compile(
        r'^127\.0\.0\.1 - - \[\d\d/\w\w\w/\d{4}:\d\d:\d\d:\d\d \+0000\] "[^"]*" 0 \d+$'
    )
    assert all(pattern.match(line) for line in logs[1:]), logs


async def test_menu_keeps_everything_but_local_host_and_port(tmp_path: Path) -> None:
    """Extra fields, LF endings, odd lines, foreign and unmirrored links stay as they were."""
    hole = MemoryHole()
    body = (
        b"iHello\tfake\t(NULL)\t0\n"
        b"0Mirrored text\t/t.txt\t\x00host\x00\t\x00port\x00\t+\n"
        b"1Not mirrored\t/skip\t\x00host\x00\t\x00port\x00\n"
        b"1Elsewhere\t\tgopher.example.org\t70\t+\n"
        b"0Same host, other port\t/t.txt\t\x00host\x00\t1\n"
        b"no tabs at all\n"
        b"\n"
        b"9Binary\t/b.bin\t \x00host\x00 \t\x00port\x00"
    )
    hole.add(b"", body + b"\r\n.")
    hole.add(b"/t.txt", b"text\n")
    hole.add(b"/skip", b"1x\t/\th\t70\r\n.\r\n")
    hole.add(b"/b.bin", bytes(range(256)))
    root = tmp_path / "m"
    with trio.fail_after(30):
        async with origin(hole) as oport:
            await store_hole(root, oport, skip={b"/skip"})
        async with running(root) as (port, _logs):
            got = await raw_fetch(port, b"\r\n")
            binary = await raw_fetch(port, b"/b.bin\r\n")
    mirror_fields = b"%s\t%d" % (HOST.encode(), port)
    expected = (
        b"iHello\tfake\t(NULL)\t0\n"
        b"0Mirrored text\t/t.txt\t" + mirror_fields + b"\t+\n"
        b"1Not mirrored\t/skip\t" + b"%s\t%d" % (HOST.encode(), oport) + b"\n"
        b"1Elsewhere\t\tgopher.example.org\t70\t+\n"
        b"0Same host, other port\t/t.txt\t127.0.0.1\t1\n"
        b"no tabs at all\n"
        b"\n"
        b"9Binary\t/b.bin\t" + mirror_fields + b"\r\n."  # spaces around the host ignored
    )
    assert got == expected
    assert binary == bytes(range(256))


async def test_large_file_and_non_utf8_selector(tmp_path: Path) -> None:
    hole = MemoryHole()
    big = os.urandom(3 * 1024 * 1024 + 17)
    hole.add_menu(
        b"", [local_link(b"9", "big", b"/big.bin"), local_link(TEXT, "caf", b"/caf\xe9 \xff")]
    )
    hole.add(b"/big.bin", big)
    hole.add(b"/caf\xe9 \xff", b"latin-1 body \xe9\r\n.\r\n")
    root = tmp_path / "m"
    with trio.fail_after(30):
        async with origin(hole) as oport:
            await store_hole(root, oport)
        async with running(root) as (port, logs):
            assert await raw_fetch(port, b"/big.bin\r\n") == big
            assert await raw_fetch(port, b"/caf\xe9 \xff\r\n") == b"latin-1 body \xe9\r\n.\r\n"
            # A Gopher+ request is answered as plain gopher.
            assert await raw_fetch(port, b"/caf\xe9 \xff\t+\r\n") == b"latin-1 body \xe9\r\n.\r\n"
            # The path form of an escaped selector serves the same item.
            path = "/" + hole_dirname(HOST, oport) + "/caf=E9=20=FF"
            assert await raw_fetch(port, path.encode() + b"\r\n") == b"latin-1 body \xe9\r\n.\r\n"
    assert any('"/caf\\xe9 \\xff" 0 ' in line for line in logs), logs


# --------------------------------------------------------------------------
# Resolution: latest, path form, root menu, several holes
# --------------------------------------------------------------------------


async def test_latest_path_form_and_root_menu(tmp_path: Path) -> None:
    root = tmp_path / "m"
    with trio.fail_after(30):
        _hole, oport, raw = await mirrored_sample(root)
        hole_dir = hole_dirname(HOST, oport)
        async with running(root) as (port, _logs):
            # No latest menu yet: /latest is simply not in the mirror.
            with pytest.raises(ServerError):
                await fetch(GopherURL(HOST, port, MENU, b"/latest"), LIMITS)
            # The path form (what on-disk gophermaps use) gives the same bytes.
            for selector in (b"/feeds", b"/feeds/news/eurasianet/4790", b"/about.txt"):
                by_path = await raw_fetch(port, f"/{hole_dir}".encode() + selector + b"\r\n")
                assert by_path == await raw_fetch(port, selector + b"\r\n")
            assert await raw_fetch(port, f"/{hole_dir}\r\n".encode()) == await raw_fetch(
                port, b"\r\n"
            )
            # "/" is not a selector of this hole: the generated root menu.
            top = parse_menu((await fetch(GopherURL(HOST, port, MENU, b"/"), LIMITS)).body)
            links = [i for i in top.items if i.type == MENU]
            assert [(i.selector, i.host, i.port) for i in links] == [
                (f"/{hole_dir}".encode(), HOST.encode(), port)
            ]
            # Now a latest menu appears (the feed layer writes it through maps).
            with Store.open(root) as store:
                entry = store.get(HOST, oport, b"/feeds/news/eurasianet/4790", "file")
                assert entry is not None
                maps.write_generated_menu(
                    store, maps.LATEST_DIR, [info_line("New"), maps.local_link(entry, "Art 4790")]
                )
                maps.write_root_map(store)
            for selector in (b"/latest", b"latest"):
                latest = await fetch(GopherURL(HOST, port, MENU, selector), LIMITS)
                items = parse_menu(latest.body).items
                assert [(i.display, i.host, i.port) for i in items] == [
                    (b"New", b"error.host", 1),
                    (b"Art 4790", HOST.encode(), port),
                ]
                assert latest.terminator == b".\r\n"
                assert items[1].selector is not None
                article = await raw_fetch(port, items[1].selector + b"\r\n")
                assert article == raw[b"/feeds/news/eurasianet/4790"]
            await trio.sleep(0.6)  # the root menu notices latest (cached for at most 2 s)
            top_raw = await raw_fetch(port, b"/\r\n")
            assert top_raw.endswith(b".\r\n")


async def test_two_holes_root_menu_and_ambiguous_selectors(tmp_path: Path) -> None:
    root = tmp_path / "m"
    first, second = sample_hole(articles=2), sample_hole(articles=3, first=5000)
    second.add(b"/only-here.txt", b"second hole only\n")
    second.add_menu(b"/extra", [local_link(TEXT, "Only here", b"/only-here.txt")])
    with trio.fail_after(40):
        async with origin(first) as port_a, origin(second) as port_b:
            raw_a = await store_hole(root, port_a)
            raw_b = await store_hole(root, port_b)
            raw_b.update(await store_hole(root, port_b, start=b"/extra"))
        dir_a, dir_b = hole_dirname(HOST, port_a), hole_dirname(HOST, port_b)
        first_dir, second_dir = (dir_a, dir_b) if port_a < port_b else (dir_b, dir_a)
        first_raw, second_raw = (raw_a, raw_b) if port_a < port_b else (raw_b, raw_a)
        async with running(root) as (port, _logs):
            top = parse_menu((await fetch(GopherURL(HOST, port, MENU, b""), LIMITS)).body)
            links = sorted(i.selector or b"" for i in top.items if i.type == MENU)
            assert links == sorted(
                [f"/{dir_a}".encode(), f"/{dir_b}".encode(), f"/{dir_b}/extra".encode()]
            )
            # A selector both holes have goes to the first hole (sorted by host, port).
            assert await raw_fetch(port, b"/about.txt\r\n") == first_raw[b"/about.txt"]
            # One only the second has resolves to it.
            assert await raw_fetch(port, b"/only-here.txt\r\n") == b"second hole only\n"
            # Menus of the second hole link to its own items by path form where the
            # origin selector would reach the first hole; following them stays in it.
            menu = parse_menu(
                (
                    await fetch(
                        GopherURL(HOST, port, MENU, f"/{second_dir}/feeds/news".encode()), LIMITS
                    )
                ).body
            )
            feed = next(i for i in menu.items if i.display == b"EurasiaNet")
            assert feed.selector == f"/{second_dir}/feeds/news/eurasianet".encode()
            served = await raw_fetch(port, feed.selector + b"\r\n")
            origin_feed = second_raw[b"/feeds/news/eurasianet"]
            assert parse_menu(served).items[0].display == parse_menu(origin_feed).items[0].display
            assert len(parse_menu(served).items) == len(parse_menu(origin_feed).items)
            # The second hole's root, through the path form.
            assert (await raw_fetch(port, f"/{second_dir}\r\n".encode())).startswith(b"iWelcome")
            assert first_dir != second_dir


async def test_manifest_changes_are_picked_up_while_serving(tmp_path: Path) -> None:
    root = tmp_path / "m"
    with trio.fail_after(30):
        _hole, oport, _raw = await mirrored_sample(root, articles=2)
        async with running(root) as (port, _logs):
            assert (await raw_fetch(port, b"/new.txt\r\n")).startswith(b"3")
            # The server holds no lock: a writer can open the store meanwhile.
            with Store.open(root) as store:
                store.put(
                    host=HOST, port=oport, selector=b"/new.txt", item_type=b"0", body=b"new\n"
                )
            with trio.fail_after(5):
                while (got := await raw_fetch(port, b"/new.txt\r\n")) != b"new\n":
                    assert got.startswith(b"3")
                    await trio.sleep(0.1)


async def test_not_a_store_is_refused(tmp_path: Path) -> None:
    with trio.fail_after(10), pytest.raises(StoreError):
        await serve(tmp_path, port=0, quiet=True)


# --------------------------------------------------------------------------
# Hostile clients
# --------------------------------------------------------------------------

HOSTILE = [
    b"../../../../etc/passwd",
    b"/../../../../etc/passwd",
    b"%2e%2e/%2e%2e/%2e%2e/etc/passwd",
    b"/%2e%2e/%2e%2e/etc/passwd",
    b"/etc/passwd",
    b"etc/passwd",
    b"\\..\\..\\etc\\passwd",
    b"/feeds/\x00/../../etc/passwd",
    b"\x00",
    b"/.gophermirror/manifest.sqlite",
    b".gophermirror/manifest.sqlite",
    b"/.gophermirror/lock",
    b"/feeds/.gophermirror-menu",
    b"/feeds/gophermap",
    b"/atom/../../../../etc/passwd",
    b"/atom/x.xml/../../../etc/passwd",
    b"/latest/../../../etc/passwd",
    b"GET / HTTP/1.1",
    bytes(range(1, 256)).replace(b"\n", b"").replace(b"\t", b""),
]


async def test_hostile_selectors_never_reach_files_outside(tmp_path: Path) -> None:
    root = tmp_path / "m"
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_bytes(SECRET)
    with trio.fail_after(40):
        _hole, oport, raw = await mirrored_sample(root, articles=2)
        hole_dir = hole_dirname(HOST, oport)
        # A row whose file is replaced by a symlink to a file outside ROOT ...
        with Store.open(root) as store:
            store.put(host=HOST, port=oport, selector=b"/evil", item_type=b"0", body=b"decoy\n")
            store.put(host=HOST, port=oport, selector=b"/passwd", item_type=b"0", body=b"decoy\n")
            store.put(
                host=HOST, port=oport, selector=b"/sub/secret", item_type=b"0", body=b"decoy\n"
            )
        hole_path = root / hole_dir
        (hole_path / "evil").unlink()
        (hole_path / "evil").symlink_to(outside / "secret")
        (hole_path / "passwd").unlink()
        (hole_path / "passwd").symlink_to("/etc/passwd")
        # ... and a directory on the way replaced by one that leads out.
        (hole_path / "sub" / "secret").unlink()
        (hole_path / "sub").rmdir()
        (hole_path / "sub").symlink_to(outside)
        # A FIFO in place of a file must not hang the server.
        with Store.open(root) as store:
            store.put(host=HOST, port=oport, selector=b"/fifo", item_type=b"0", body=b"decoy\n")
        (hole_path / "fifo").unlink()
        os.mkfifo(hole_path / "fifo")
        hostile = [
            *HOSTILE,
            b"/evil",
            b"/passwd",
            b"/sub/secret",
            b"/fifo",
            f"/{hole_dir}/evil".encode(),
            f"/{hole_dir}/sub/secret".encode(),
            f"/{hole_dir}/../outside/secret".encode(),
            f"/{hole_dir}/../../../../etc/passwd".encode(),
            f"/{hole_dir}/%2e%2e/outside/secret".encode(),
            f"{root}/{hole_dir}/about.txt".encode(),
            str(outside / "secret").encode(),
        ]
        passwd = Path("/etc/passwd").read_bytes()[:40]
        async with running(root, request_timeout=2.0) as (port, _logs):
            for selector in hostile:
                got = await raw_fetch(port, selector + b"\r\n")
                assert got.startswith(b"3") and got.endswith(b".\r\n"), (selector, got[:80])
                assert SECRET not in got and passwd not in got and b"decoy" not in got
                assert b"SQLite" not in got
            # Still serving afterwards.
            assert await raw_fetch(port, b"/about.txt\r\n") == raw[b"/about.txt"]


async def test_oversized_and_unfinished_requests(tmp_path: Path) -> None:
    root = tmp_path / "m"
    with trio.fail_after(30):
        _hole, _oport, raw = await mirrored_sample(root, articles=1)
        async with running(root, request_timeout=0.5, max_request=4096) as (port, logs):
            # 10 KB without a line end: a type-3 error, or the connection closed.
            got = await raw_fetch(port, b"A" * 10_240)
            assert got in (b"", b"3Request too long\t\terror.host\t1\r\n.\r\n"), got[:80]
            got = await raw_fetch(port, b"/" + b"x" * 10_240 + b"\r\n")
            assert got == b"" or got.startswith(b"3Request too long")
            # Exactly at the limit is still a request (not found, but answered).
            got = await raw_fetch(port, b"/" + b"y" * 4095 + b"\r\n")
            assert got.startswith(b"3'/yyy")
            # A request never finished: closed after request_timeout, nothing sent.
            stream = await trio.open_tcp_stream(HOST, port)
            await stream.send_all(b"/about.t")
            start = trio.current_time()
            with trio.fail_after(5):
                assert await stream.receive_some(100) == b""
            assert 0.3 < trio.current_time() - start < 4
            await stream.aclose()
            # A client that connects and says nothing at all.
            stream = await trio.open_tcp_stream(HOST, port)
            with trio.fail_after(5):
                assert await stream.receive_some(100) == b""
            await stream.aclose()
            # A request split across many small segments is still one request.
            stream = await trio.open_tcp_stream(HOST, port)
            for byte in b"/about.txt\r\n":
                await stream.send_all(bytes([byte]))
                await trio.sleep(0.005)
            data = b""
            while chunk := await stream.receive_some(65536):
                data += chunk
            await stream.aclose()
            assert data == raw[b"/about.txt"]
            # An LF-only request and one cut short by EOF (no line end) both work.
            assert await raw_fetch(port, b"/about.txt\n") == raw[b"/about.txt"]
            assert await raw_fetch_eof(port, b"/about.txt") == raw[b"/about.txt"]
    assert any('"(no request: timeout)" 3 0' in line for line in logs)


async def raw_fetch_eof(port: int, request: bytes) -> bytes:
    """Send ``request``, half-close, read to EOF."""
    stream = await trio.open_tcp_stream(HOST, port)
    try:
        await stream.send_all(request)
        await stream.send_eof()
        data = b""
        while chunk := await stream.receive_some(65536):
            data += chunk
        return data
    finally:
        await stream.aclose()


async def test_connection_cap_and_no_fd_leak(tmp_path: Path) -> None:
    root = tmp_path / "m"
    with trio.fail_after(60):
        _hole, _oport, raw = await mirrored_sample(root, articles=1)
        async with running(root, max_connections=50, request_timeout=2.0, quiet=True) as (port, _):
            # Warm up (threads, caches) so the fd count is taken in a steady state.
            assert await raw_fetch(port, b"/about.txt\r\n") == raw[b"/about.txt"]
            before = open_fds()
            socks = []
            for _ in range(300):
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                s.setblocking(False)
                with suppress(BlockingIOError):
                    s.connect((HOST, port))
                socks.append(s)
            await trio.sleep(0.5)
            busy = closed = silent = 0
            for s in socks:
                try:
                    data = s.recv(4096)
                except BlockingIOError:
                    silent += 1  # held open by the server, waiting for a request
                    continue
                except ConnectionResetError:
                    closed += 1
                    continue
                if data.startswith(b"3Server busy"):
                    busy += 1
                elif data == b"":
                    closed += 1
            # Never more held than the cap; the rest told busy (or closed) at once.
            assert silent <= 50
            assert busy + closed >= 250
            assert busy > 0
            # While the 50 wait, no new request can be served; once they time out, it can.
            for s in socks:
                s.close()
            with trio.fail_after(10):
                while True:
                    got = await raw_fetch(port, b"/about.txt\r\n")
                    if got == raw[b"/about.txt"]:
                        break
                    assert got.startswith(b"3Server busy") or got == b""
                    await trio.sleep(0.2)
            # Every server-side socket is closed again.
            with trio.fail_after(10):
                while open_fds() > before:
                    await trio.sleep(0.1)
            for selector in [*HOSTILE, b"/about.txt", b"/nope", b""]:
                await raw_fetch(port, selector + b"\r\n")
            await raw_fetch(port, b"x" * 9000)
            with trio.fail_after(10):
                while open_fds() > before:
                    await trio.sleep(0.1)
            assert open_fds() == before


async def test_many_concurrent_clients_all_get_exact_bytes(tmp_path: Path) -> None:
    root = tmp_path / "m"
    with trio.fail_after(60):
        _hole, oport, raw = await mirrored_sample(root, articles=4)
        selectors = sorted(raw)
        async with running(root, quiet=True) as (port, _logs):
            results: list[bool] = []

            async def client(n: int) -> None:
                for i in range(10):
                    selector = selectors[(n + i) % len(selectors)]
                    got = await raw_fetch(port, selector + b"\r\n")
                    results.append(got == local_fields(raw[selector], oport, port))

            async with trio.open_nursery() as nursery:
                for n in range(50):
                    nursery.start_soon(client, n)
    assert len(results) == 500 and all(results)


async def test_generated_root_with_atom_files(tmp_path: Path) -> None:
    root = tmp_path / "m"
    with trio.fail_after(30):
        await mirrored_sample(root, articles=1)
        atom = root / "atom"
        atom.mkdir()
        (atom / "eurasianet.xml").write_bytes(b"<feed/>\n")
        (atom / "not listed.txt").write_bytes(b"x")
        (atom / "leak.xml").symlink_to(tmp_path / "outside.xml")
        (tmp_path / "outside.xml").write_bytes(SECRET)
        async with running(root) as (port, _logs):
            top = parse_menu(await raw_fetch(port, b"/\r\n"))
            atom_links = [(i.display, i.selector) for i in top.items if i.type == TEXT]
            assert atom_links == [(b"eurasianet.xml", b"/atom/eurasianet.xml")]
            assert await raw_fetch(port, b"/atom/eurasianet.xml\r\n") == b"<feed/>\n"
            for selector in (b"/atom/leak.xml", b"/atom/not listed.txt", b"/atom/"):
                got = await raw_fetch(port, selector + b"\r\n")
                assert got.startswith(b"3") and SECRET not in got


async def test_advertise_is_written_into_local_links(tmp_path: Path) -> None:
    root = tmp_path / "m"
    with trio.fail_after(30):
        _hole, oport, raw = await mirrored_sample(root, articles=1)
        async with running(root, advertise=("gopher.example.net", 7070)) as (port, _logs):
            got = await raw_fetch(port, b"/feeds\r\n")
    expected = raw[b"/feeds"].replace(b"\t127.0.0.1\t%d" % oport, b"\tgopher.example.net\t7070")
    assert got == expected
    assert link_line(MENU, "x", b"/", "gopher.example.net", 7070).port == 7070
