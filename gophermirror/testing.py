"""A small in-memory gopher origin, for tests, the demo and the benchmark.

Owns: ``MemoryHole`` (selectors mapped to reply bytes, menus built with the
protocol module), ``serve_hole`` (a trio server on loopback that answers
from it), and ``sample_hole`` (the bundled sample hole: a feed of articles
in magical.fish's format).  Must not touch: the store, the crawler.
"""

from __future__ import annotations

import contextlib
import errno
import time
from collections.abc import Callable, Iterable, Sequence

import attrs
import trio

from .protocol import (
    MENU,
    TEXT,
    MenuItem,
    decode_request,
    format_menu,
    info_line,
    link_line,
)

HOST_MARK = b"\x00host\x00"
PORT_MARK = b"\x00port\x00"


@attrs.define(eq=False)
class MemoryHole:
    """A gopher hole held in memory.

    Replies are stored as bytes; menus may use ``HOST_MARK``/``PORT_MARK``
    in place of this server's own host and port, filled in by ``bind``.
    """

    replies: dict[bytes, bytes] = attrs.field(factory=dict)
    """Selector -> reply bytes (templates until ``bind``)."""
    requests: list[bytes] = attrs.field(factory=list)
    """Every request line received, in order (for tests)."""
    request_times: list[float] = attrs.field(factory=list)
    """``time.monotonic()`` of each request, beside ``requests``."""
    host: str = "127.0.0.1"
    port: int = 0
    _templates: dict[bytes, bytes] = attrs.field(factory=dict)

    def add(self, selector: bytes, reply: bytes) -> None:
        """Answer ``selector`` with exactly ``reply``."""
        self._templates[selector] = reply
        if self.port:
            self.replies[selector] = self._fill(reply)

    def add_menu(
        self, selector: bytes, lines: Iterable[MenuItem], *, terminator: bytes = b".\r\n"
    ) -> None:
        """A menu; links whose host is ``HOST_MARK`` point at this server."""
        self.add(selector, format_menu(tuple(lines)) + terminator)

    def remove(self, selector: bytes) -> None:
        """Forget an item (a later request gets a type-3 error)."""
        self._templates.pop(selector, None)
        self.replies.pop(selector, None)

    def bind(self, host: str, port: int) -> None:
        """Fill in the real host and port of the server."""
        self.host, self.port = host, port
        self.replies = {sel: self._fill(rep) for sel, rep in self._templates.items()}

    def reply(self, selector: bytes) -> bytes:
        """What the server sends for ``selector``."""
        found = self.replies.get(selector)
        if found is None and selector == b"/":
            found = self.replies.get(b"")  # as real servers do: "/" is the root too
        if found is not None:
            return found
        shown = selector.decode("utf-8", "replace")
        return f"3'{shown}' does not exist\t\terror.host\t1\r\n.\r\n".encode()

    def _fill(self, data: bytes) -> bytes:
        if HOST_MARK not in data:
            return data
        return data.replace(HOST_MARK, self.host.encode()).replace(
            PORT_MARK, str(self.port).encode()
        )


def local_link(item_type: bytes, display: str | bytes, selector: bytes) -> MenuItem:
    """A link to ``selector`` on the hole's own server."""
    return link_line(item_type, display, selector, HOST_MARK, 0).replace(port_raw=PORT_MARK)


async def _answer(hole: MemoryHole, stream: trio.SocketStream) -> None:
    buffer = b""
    try:
        with trio.move_on_after(10):
            while b"\n" not in buffer and len(buffer) < 4096:
                chunk = await stream.receive_some(4096)
                if not chunk:
                    break
                buffer += chunk
        selector, _search, _plus = decode_request(buffer.split(b"\n", 1)[0] + b"\n")
        hole.requests.append(selector)
        hole.request_times.append(time.monotonic())
        await stream.send_all(hole.reply(selector))
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        pass
    finally:
        await trio.aclose_forcefully(stream)


async def serve_hole(
    hole: MemoryHole,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``hole`` until cancelled; ``await nursery.start(serve_hole, hole)`` gives the port."""
    listeners = await trio.open_tcp_listeners(port, host=host)
    bound = listeners[0].socket.getsockname()[1]
    hole.bind(host, bound)

    async def handler(stream: trio.SocketStream) -> None:
        await _answer(hole, stream)

    try:
        async with trio.open_nursery() as nursery:
            for listener in listeners:
                nursery.start_soon(_serve_listener, listener, handler)
            task_status.started(bound)
    finally:
        for listener in listeners:
            await listener.aclose()


async def _serve_listener(
    listener: trio.SocketListener, handler: Callable[[trio.SocketStream], object]
) -> None:
    async with trio.open_nursery() as nursery:
        while True:
            try:
                stream = await listener.accept()
            except OSError as exc:
                if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS):
                    await trio.sleep(0.05)
                    continue
                raise
            nursery.start_soon(handler, stream)  # type: ignore[arg-type]


# --------------------------------------------------------------------------
# The bundled sample hole
# --------------------------------------------------------------------------

FEED_SELECTOR = b"/feeds/news/eurasianet"


def sample_hole(articles: int = 12, *, first: int = 4789) -> MemoryHole:
    """A small hole shaped like magical.fish: a root, nested menus, a feed.

    The feed menu ``/feeds/news/eurasianet`` lists ``articles`` text items
    (selectors ``/feeds/news/eurasianet/<n>``) newest first, grouped under
    ``--- YYYY-MM ---`` info headings, each in magical.fish's article format.
    """
    from .article import parse_article, sample_article

    hole = MemoryHole()
    hole.add_menu(
        b"",
        [
            info_line("Welcome to the gophermirror sample hole"),
            info_line(""),
            local_link(MENU, "Feeds", b"/feeds"),
            local_link(TEXT, "About this hole", b"/about.txt"),
            link_line(MENU, "Elsewhere: floodgap", b"/", "gopher.floodgap.com", 70),
            link_line(b"h", "Project page", b"URL:https://example.org/gophermirror", "", 0),
        ],
    )
    hole.add(
        b"/about.txt",
        b"This hole is generated by gophermirror.testing.sample_hole.\n"
        b"It stands in for gopher://magical.fish/ when the network is out of reach.\n",
    )
    hole.add_menu(
        b"/feeds",
        [
            info_line("Feeds"),
            local_link(MENU, "News", b"/feeds/news"),
            local_link(MENU, "Back to the root", b""),
        ],
    )
    hole.add_menu(
        b"/feeds/news",
        [
            local_link(MENU, "EurasiaNet", FEED_SELECTOR),
            local_link(MENU, "Up", b"/feeds"),
        ],
    )
    hole.add_menu(FEED_SELECTOR, feed_menu_lines(range(first + articles - 1, first - 1, -1)))
    for number in range(first, first + articles):
        body = sample_article(number)
        hole.add(FEED_SELECTOR + b"/" + str(number).encode(), body)
        parse_article(body)  # the sample must be in the parsable format
    return hole


def feed_menu_lines(numbers: Sequence[int] | range) -> list[MenuItem]:
    """Menu lines of a feed listing articles ``numbers`` (newest first)."""
    from .article import parse_article, sample_article

    lines: list[MenuItem] = [info_line("EurasiaNet"), info_line("")]
    month = None
    for number in numbers:
        meta = parse_article(sample_article(number))
        heading = meta.date.strftime("%Y-%m") if meta.date else "undated"
        if heading != month:
            lines.append(info_line(f"--- {heading} ---"))
            month = heading
        title = meta.title or f"Article {number}"
        lines.append(local_link(TEXT, title, FEED_SELECTOR + b"/" + str(number).encode()))
    lines.append(local_link(MENU, "Up", b"/feeds/news"))
    return lines


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m gophermirror.testing [--port P] [--articles N]``: serve the sample hole."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m gophermirror.testing",
        description="Serve the bundled sample hole on 127.0.0.1 until Ctrl-C.",
    )
    parser.add_argument("--port", type=int, default=7071)
    parser.add_argument("--articles", type=int, default=12)
    args = parser.parse_args(argv)
    hole = sample_hole(args.articles)

    async def run() -> None:
        async with trio.open_nursery() as nursery:
            port = await nursery.start(
                lambda task_status: serve_hole(hole, port=args.port, task_status=task_status)
            )
            print(f"sample hole on gopher://127.0.0.1:{port}/", flush=True)

    with contextlib.suppress(KeyboardInterrupt):
        trio.run(run)


if __name__ == "__main__":
    main()
