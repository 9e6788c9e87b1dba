"""The trio client against real loopback servers written here."""

from __future__ import annotations

import socket
from functools import partial

import pytest
import trio

from gophermirror.client import Limits, fetch
from gophermirror.errors import ConnectError, ConnectionReset, GopherTimeout, ServerError, TooLarge
from gophermirror.protocol import GopherURL, parse_menu
from gophermirror.testing import MemoryHole, info_line, local_link, serve_hole


async def _serve(handler: object, nursery: trio.Nursery, host: str = "127.0.0.1") -> int:
    listeners = await nursery.start(partial(trio.serve_tcp, handler, 0, host=host))
    return int(listeners[0].socket.getsockname()[1])


async def test_fetch_menu_and_text_byte_exact() -> None:
    hole = MemoryHole()
    hole.add_menu(b"", [info_line("hi"), local_link(b"0", "Doc", b"/doc")])
    text = b"caf\xe9\r\n..\n.\nno final newline"
    hole.add(b"/doc", text)
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            port = await nursery.start(serve_hole, hole)
            menu = await fetch(f"gopher://127.0.0.1:{port}/1")
            assert menu.terminator == b".\r\n"
            assert menu.raw == hole.reply(b"")
            assert [i.selector for i in parse_menu(menu.body).items] == [b"", b"/doc"]
            doc = await fetch(f"gopher://127.0.0.1:{port}/0/doc")
            assert doc.body == text and doc.terminator == b""
            assert hole.requests == [b"", b"/doc"]
            nursery.cancel_scope.cancel()


async def test_type3_error_is_typed_and_carries_url() -> None:
    hole = MemoryHole()
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            port = await nursery.start(serve_hole, hole)
            with pytest.raises(ServerError) as info:
                await fetch(f"gopher://127.0.0.1:{port}/0/missing")
            assert f"127.0.0.1:{port}/0/missing" in str(info.value)
            raw = await fetch(f"gopher://127.0.0.1:{port}/0/missing", check_error=False)
            assert raw.body.startswith(b"3'/missing'")
            nursery.cancel_scope.cancel()


async def test_refused() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    with trio.fail_after(10), pytest.raises(ConnectError) as info:
        await fetch(f"gopher://127.0.0.1:{port}/0/x")
    assert str(port) in str(info.value)


async def test_silent_server_times_out() -> None:
    async def silent(stream: trio.SocketStream) -> None:
        await trio.sleep_forever()

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            port = await _serve(silent, nursery)
            with pytest.raises(GopherTimeout):
                await fetch(f"gopher://127.0.0.1:{port}/0/x", Limits(idle_timeout=0.3))
            nursery.cancel_scope.cancel()


async def test_slow_loris_hits_total_timeout() -> None:
    async def drip(stream: trio.SocketStream) -> None:
        for _ in range(100):
            await stream.send_all(b"x")
            await trio.sleep(0.05)

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            port = await _serve(drip, nursery)
            with pytest.raises(GopherTimeout, match="not finished"):
                await fetch(
                    f"gopher://127.0.0.1:{port}/0/x", Limits(idle_timeout=1, total_timeout=0.5)
                )
            nursery.cancel_scope.cancel()


async def test_endless_body_is_capped() -> None:
    async def endless(stream: trio.SocketStream) -> None:
        try:
            for _ in range(10_000):
                await stream.send_all(b"y" * 65536)
        except trio.BrokenResourceError:
            pass

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            port = await _serve(endless, nursery)
            with pytest.raises(TooLarge):
                await fetch(f"gopher://127.0.0.1:{port}/9/x", Limits(max_size=1 << 20))
            nursery.cancel_scope.cancel()


async def test_reset_mid_body() -> None:
    async def reset(stream: trio.SocketStream) -> None:
        await stream.send_all(b"partial")
        sock = stream.socket
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        sock.close()

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            port = await _serve(reset, nursery)
            with pytest.raises((ConnectionReset,)):
                # The reset may race the data; either way nothing partial is returned.
                await fetch(f"gopher://127.0.0.1:{port}/0/x")
            nursery.cancel_scope.cancel()


async def test_ipv6_loopback() -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6 on this machine")
    hole = MemoryHole()
    hole.add(b"/v6", b"over ipv6\n")
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            try:
                port = await nursery.start(
                    lambda task_status: serve_hole(hole, host="::1", task_status=task_status)
                )
            except OSError:
                pytest.skip("::1 cannot be bound here")
            result = await fetch(f"gopher://[::1]:{port}/0/v6")
            assert result.body == b"over ipv6\n"
            nursery.cancel_scope.cancel()


async def test_host_names_idna_refuses_are_a_connect_error() -> None:
    with trio.fail_after(10):
        for host in ("a" * 64 + ".example", "a..b"):
            with pytest.raises(ConnectError, match="bad host name"):
                await fetch(GopherURL(host, 70, b"0", b"/x"))
