"""A hostile gopher origin: one loopback server, one misbehaviour per selector.

Owns: ``HostileOrigin`` (which selectors misbehave and how, the menus that
lead to them, the normal part that must come through whole, the log of
requests) and ``serve_origin`` (the trio server; loopback only).
Must not touch: the store, the crawler; it only answers requests.

Gopherspace is run by hobbyists on old software, so a mirror meets every
kind of broken server.  Each ``Case`` is one of them.  The root menu always
links the normal part (``/normal``) first, then the enabled cases, so one
hole can hold them all and a test can still check that the normal part was
mirrored byte for byte.  Replies for every selector that *should* be stored
are in ``HostileOrigin.expected()``.
"""

from __future__ import annotations

import enum
import socket
import struct
import time
from collections.abc import Callable, Iterable

import attrs
import trio

from gophermirror.protocol import decode_request

MiB = 1 << 20
CRLF = b"\r\n"
TERM = b".\r\n"


class Case(enum.Enum):
    """One kind of broken origin; the value names it in test ids and figures."""

    SILENT = "silent"
    """Reads the request, then sends nothing and holds the connection forever."""
    DEAF = "deaf"
    """Accepts, never reads the request, never sends (peeks to see the selector)."""
    LORIS = "loris"
    """Sends a byte a second, forever (the idle timeout never fires)."""
    ENDLESS = "endless"
    """Sends 64 KiB chunks as fast as the client takes them, forever."""
    OVERSIZE = "oversize"
    """A complete item, one byte per byte over the size cap (``oversize`` bytes)."""
    RESET = "reset"
    """Sends part of a body, then resets the connection (SO_LINGER 0)."""
    LINGER = "linger"
    """Sends a whole reply, then keeps the connection open instead of closing it."""
    MALFORMED = "malformed"
    """A menu of broken lines: no tabs, NUL, 64 KB lines, port 99999, -70, CR in a selector."""
    HUGE_MENU = "huge-menu"
    """A menu of 200,000 lines (about 9 MB)."""
    TRAP = "trap"
    """Generated menus, each linking ten new menus, forever."""
    TRAVERSAL = "traversal"
    """Selectors with ``../``, absolute paths, ``%2e%2e``, ``\\``, NUL, store names."""
    ERRORS = "errors"
    """Type-3 error replies (pygopherd and gophernicus wording), and a text that is not one."""
    MENU_AND_TEXT = "menu-and-text"
    """One selector linked both as a menu and as a text item."""
    LATIN1 = "latin1"
    """Menus, selectors and bodies that are not UTF-8 (latin-1, Shift-JIS, junk)."""
    ROBOTS = "robots"
    """A robots.txt that disallows part of the hole (among 15,000 other rules)."""
    HOST_FILES = "host-files"
    """robots.txt drips a byte a second; caps.txt never ends."""


ALL_AT_ONCE = frozenset(set(Case) - {Case.HOST_FILES})
"""Every case that can share one hole (HOST_FILES and ROBOTS both own robots.txt)."""

# -- selectors ---------------------------------------------------------------

NORMAL = b"/normal"
SILENT = b"/hostile/silent"
DEAF = b"/hostile/deaf"
LORIS = b"/hostile/loris"
ENDLESS = b"/hostile/endless"
OVERSIZE = b"/hostile/oversize"
RESET = b"/hostile/reset"
LINGER = b"/linger"
MALFORMED = b"/malformed"
HUGE = b"/huge"
TRAP = b"/trap"
TRAVERSAL = b"/traversal"
ERRORS = b"/errors"
BOTH = b"/both"
LATIN1 = b"/latin1"
PRIVATE = b"/private"
ROBOTS = b"robots.txt"
CAPS = b"caps.txt"

HUGE_ITEMS = 16
"""Distinct documents the huge menu links to (each many times)."""

# Bytes that a naive client would mangle: a dot line, dot-stuffing, a final
# ".\r\n" inside a binary item, CRLF and LF mixed, no final newline, NULs.
NORMAL_FILES: dict[bytes, tuple[bytes, bytes]] = {
    b"/normal/a.txt": (b"0", b"Plain text.\r\nSecond line.\r\n" + TERM),
    b"/normal/dots.txt": (b"0", b"..stuffed\r\n.\r\nnot the end\r\n" + TERM),
    b"/normal/lf.txt": (b"0", b"LF only\nno terminator, no final newline"),
    b"/normal/empty.txt": (b"0", b""),
    b"/normal/blob.bin": (b"9", bytes(range(256)) * 64 + b"\r\n.\r\n"),
    b"/normal/sub/deep.txt": (b"0", b"Two levels down.\r\n" + TERM),
    b"/normal/sub/pic.gif": (b"g", b"GIF89a\x01\x00\x01\x00\x00\x00\x00;"),
}


def _line(item_type: bytes, display: bytes, selector: bytes, host: bytes, port: bytes) -> bytes:
    return item_type + display + b"\t" + selector + b"\t" + host + b"\t" + port + CRLF


def _info(text: bytes) -> bytes:
    return b"i" + text + b"\t\terror.host\t1" + CRLF


def _error(text: bytes) -> bytes:
    return b"3" + text + b"\t\terror.host\t1" + CRLF + TERM


@attrs.define(eq=False)
class HostileOrigin:
    """The hole: enabled cases, their replies, and what it was asked.

    Menus name this server's host and port, so they are built by ``bind``
    once the port is known.
    """

    cases: frozenset[Case] = ALL_AT_ONCE
    """The cases the root menu links to (the normal part is always there)."""
    outside: str = "/nonexistent/gophermirror-outside"
    """An absolute directory a traversal selector names (tests plant it next to ROOT)."""
    loris_interval: float = 1.0
    """Seconds between two bytes of the slow-loris replies."""
    oversize: int = MiB + 1
    """Size of the OVERSIZE item (one byte over a 1 MiB cap by default)."""
    huge_lines: int = 200_000
    """Lines of the HUGE_MENU menu."""
    host: str = "127.0.0.1"
    """Where it listens (loopback only)."""
    port: int = 0
    """Its port once bound."""
    requests: list[bytes] = attrs.field(factory=list)
    """Every selector asked for, in order (DEAF requests are peeked, then logged)."""
    times: list[float] = attrs.field(factory=list)
    """``time.monotonic()`` of each request, beside ``requests``."""
    _static: dict[bytes, bytes] = attrs.field(factory=dict)
    _linger: dict[bytes, bytes] = attrs.field(factory=dict)
    _expected: dict[tuple[bytes, bytes], bytes] = attrs.field(factory=dict)
    _huge: bytes = b""

    # -- building the hole ---------------------------------------------------

    def bind(self, host: str, port: int) -> None:
        """Fix the host and port and build every reply."""
        self.host, self.port = host, port
        self._static.clear()
        self._linger.clear()
        self._expected.clear()
        self._build()

    def _link(self, item_type: bytes, display: bytes, selector: bytes) -> bytes:
        return _line(item_type, display, selector, self.host.encode(), b"%d" % self.port)

    def _serve(self, item_type: bytes, selector: bytes, reply: bytes, *, keep: bool = True) -> None:
        """Answer ``selector`` with ``reply``; ``keep``: the mirror must store it exactly."""
        self._static[selector] = reply
        if keep:
            self._expected[item_type, selector] = reply

    def _build(self) -> None:
        root = [_info(b"A hostile hole: the normal part first, then the trouble"), CRLF]
        root.append(self._link(b"1", b"The normal part", NORMAL))
        self._build_normal()
        builders: dict[Case, Callable[[], list[bytes]]] = {
            Case.SILENT: lambda: [self._link(b"0", b"Silent", SILENT)],
            Case.DEAF: lambda: [self._link(b"0", b"Deaf", DEAF)],
            Case.LORIS: lambda: [self._link(b"0", b"A byte a second", LORIS)],
            Case.ENDLESS: lambda: [self._link(b"9", b"Never ends", ENDLESS)],
            Case.OVERSIZE: lambda: [self._link(b"9", b"Too big", OVERSIZE)],
            Case.RESET: lambda: [self._link(b"0", b"Reset mid-body", RESET)],
            Case.LINGER: self._build_linger,
            Case.MALFORMED: self._build_malformed,
            Case.HUGE_MENU: self._build_huge,
            Case.TRAP: lambda: [self._link(b"1", b"A trap", TRAP)],
            Case.TRAVERSAL: self._build_traversal,
            Case.ERRORS: self._build_errors,
            Case.MENU_AND_TEXT: self._build_both,
            Case.LATIN1: self._build_latin1,
            Case.ROBOTS: self._build_robots,
            Case.HOST_FILES: lambda: [],
        }
        for case in Case:
            if case in self.cases:
                root.extend(builders[case]())
        self._serve(b"1", b"", b"".join(root) + TERM)

    def _build_normal(self) -> None:
        lines = [_info(b"Normal items: all must be stored byte for byte")]
        sub = [_info(b"A submenu"), self._link(b"1", b"Up", NORMAL)]
        for selector, (item_type, body) in NORMAL_FILES.items():
            target = sub if selector.startswith(b"/normal/sub/") else lines
            target.append(self._link(item_type, selector.rsplit(b"/", 1)[1], selector))
            self._serve(item_type, selector, body)
        lines.append(self._link(b"1", b"Submenu", b"/normal/sub"))
        lines.append(self._link(b"1", b"Back to the root", b""))
        self._serve(b"1", NORMAL, b"".join(lines) + TERM)
        self._serve(b"1", b"/normal/sub", b"".join(sub) + TERM)

    def _build_linger(self) -> list[bytes]:
        """Replies sent whole, then the connection held: text ends at its dot line."""
        text = LINGER + b"/text.txt"
        blob = LINGER + b"/blob.bin"
        menu = self._link(b"0", b"Text, then silence", text)
        menu += self._link(b"9", b"Binary, then silence", blob)
        self._serve(b"1", LINGER, menu + TERM)
        self._linger[text] = b"All of it, but the server never closes.\n" + TERM
        self._linger[blob] = b"binary has no end marker\n" + TERM
        self._expected[b"0", text] = self._linger[text]
        return [self._link(b"1", b"Whole replies, never closed", LINGER)]

    def _build_malformed(self) -> list[bytes]:
        host, port = self.host.encode(), b"%d" % self.port
        good = {
            b"/malformed/ok.txt": b"good link in a bad menu\r\n" + TERM,
            b"/malformed/long-display.txt": b"linked from a 64 KB line\r\n" + TERM,
            b"/malformed/plus.txt": b"a Gopher+ line\r\n" + TERM,
            b"/malformed/lf.txt": b"an LF-only line\n",
            b"/malformed/last.txt": b"the last line had no line end\n",
        }
        for selector, body in good.items():
            self._serve(b"0", selector, body)
        menu = b"".join(
            [
                b"0No tabs at all" + CRLF,
                b"0Nul\x00byte\t/malformed/nul\t" + host + b"\t" + port + CRLF,
                _line(b"0", b"L" * 65536, b"/malformed/long-display.txt", host, port),
                _line(b"0", b"Long selector", b"/malformed/" + b"s" * 65536, host, port),
                _line(b"0", b"Port too big", b"/malformed/p1", host, b"99999"),
                _line(b"0", b"Negative port", b"/malformed/p2", host, b"-70"),
                _line(b"0", b"Port in words", b"/malformed/p3", host, b"seventy"),
                _line(b"0", b"Empty host", b"/malformed/p4", b"", port),
                b"0Two fields\t/malformed/p5" + CRLF,
                b"1Only tabs\t\t\t" + CRLF,
                b"\t\t\t" + CRLF,
                CRLF,
                b"\x00\x00\x00" + CRLF,
                _line(b"0", b"CR in selector", b"/malformed/c\rr", host, port),
                _line(b"0", b"A good link", b"/malformed/ok.txt", host, port),
                _line(b"0", b"Gopher+", b"/malformed/plus.txt", host, port)[:-2] + b"\t+" + CRLF,
                _line(b"0", b"LF ending", b"/malformed/lf.txt", host, port)[:-2] + b"\n",
                _line(b"0", b"No line end", b"/malformed/last.txt", host, port)[:-2],
            ]
        )
        self._serve(b"1", MALFORMED, menu)
        return [self._link(b"1", b"Malformed menu", MALFORMED)]

    def _build_huge(self) -> list[bytes]:
        host, port = self.host.encode(), b"%d" % self.port
        parts = []
        for i in range(self.huge_lines):
            kind = i % 4
            if kind == 0:
                parts.append(b"iLine %d of a very long menu\t\terror.host\t1\r\n" % i)
            elif kind == 1:
                parts.append(b"0Elsewhere %d\t/x/%d\telsewhere.invalid\t70\r\n" % (i, i))
            elif kind == 2:
                parts.append(
                    _line(b"0", b"Item %d" % i, HUGE + b"/%d" % (i // 4 % HUGE_ITEMS), host, port)
                )
            else:
                parts.append(b"hWeb %d\tURL:https://example.org/%d\t\t0\r\n" % (i, i))
        self._huge = b"".join(parts) + TERM
        self._serve(b"1", HUGE, self._huge)
        for n in range(HUGE_ITEMS):
            self._serve(b"0", HUGE + b"/%d" % n, b"huge menu item %d\r\n" % n + TERM)
        return [self._link(b"1", b"A 200,000-line menu", HUGE)]

    def traversal_selectors(self) -> list[bytes]:
        """Selectors that would escape ROOT (or hit the store's own files) if joined naively."""
        outside = self.outside.encode()
        return [
            b"../escape-1",
            b"/../../escape-2",
            b"../../../../../../../../../../tmp/escape-3",
            b"%2e%2e/%2e%2e/escape-4",
            b"/%2E%2E/%2e%2E/escape-5",
            b"..\\..\\escape-6",
            b"/normal/../../escape-7",
            b"/normal/sub/..",
            b"..",
            b".",
            b"../" * 300 + b"escape-8",
            outside + b"/pwned-absolute",
            b"/" + outside + b"/pwned-double-slash",
            b"~/.bashrc",
            b".gophermirror/manifest.sqlite",
            b"/.gophermirror/manifest.sqlite",
            b"/.gophermirror/lock",
            b"/.gophermirror/frontier.sqlite",
            b"/normal/gophermap",
            b"gophermap",
            b"/GOPHERMAP",
            b"/normal/.gophermirror-menu",
            b"/.gophermirror-tmp-0123456789abcdef",
            b"/normal/A.TXT",
            b"/dev/zero",
            b"/proc/self/environ",
        ]

    def _build_traversal(self) -> list[bytes]:
        lines = [_info(b"Selectors that try to leave the mirror")]
        for selector in self.traversal_selectors():
            lines.append(self._link(b"0", b"Escape " + selector[:40], selector))
            self._serve(b"0", selector, b"PWNED " + selector + CRLF + TERM)
        menu = b"../../escape-menu"
        lines.append(self._link(b"1", b"An escaping menu", menu))
        self._serve(
            b"1",
            menu,
            self._link(b"0", b"and below it", b"../../escape-menu/../x") + TERM,
        )
        self._serve(b"0", b"../../escape-menu/../x", b"PWNED from a menu\r\n" + TERM)
        # NUL in a selector: the line is unreadable, so it is never followed.
        lines.append(b"0NUL selector\t/a/\x00/../../x\t" + self.host.encode() + b"\t%d" % self.port)
        lines.append(CRLF)
        self._serve(b"1", TRAVERSAL, b"".join(lines) + TERM)
        return [self._link(b"1", b"Traversal", TRAVERSAL)]

    def _build_errors(self) -> list[bytes]:
        self._static[b"/errors/pygopherd"] = _error(b"'/errors/pygopherd' does not exist")
        self._static[b"/errors/gone-menu"] = _error(b"Error: File or directory not found!")
        self._serve(b"0", b"/errors/pigs.txt", b"3 little pigs\r\n" + TERM)
        menu = [
            self._link(b"0", b"Missing", b"/errors/pygopherd"),
            self._link(b"1", b"Missing menu", b"/errors/gone-menu"),
            self._link(b"0", b"Not an error", b"/errors/pigs.txt"),
        ]
        self._serve(b"1", ERRORS, b"".join(menu) + TERM)
        return [self._link(b"1", b"Errors", ERRORS)]

    def _build_both(self) -> list[bytes]:
        body = _info(b"This selector is a menu and a text") + self._link(
            b"0", b"a normal item", b"/normal/a.txt"
        )
        self._static[BOTH] = body + TERM
        self._expected[b"1", BOTH] = body + TERM
        self._expected[b"0", BOTH] = body + TERM
        return [
            self._link(b"1", b"Both, as a menu", BOTH),
            self._link(b"0", b"Both, as a text", BOTH),
        ]

    def _build_latin1(self) -> list[bytes]:
        sub = b"/latin1/men\xfc"
        items = {
            b"/latin1/caf\xe9.txt": (b"0", b"Caf\xe9 cr\xe8me br\xfbl\xe9e\r\n" + TERM),
            b"/latin1/\xff\xfe\x80.bin": (b"9", b"\xff\xfe\x80\x00\x81" * 100),
            sub + b"/\x82\xa0\x82\xa2.txt": (b"0", b"\x82\xa0\x82\xa2\x82\xa4 (Shift-JIS)\r\n"),
            b"/latin1/bad-utf8.txt": (b"0", b"\xc3\x28 \xa0\xa1 \xe2\x82 \xf0\x28\x8c\x28\n"),
        }
        lines = [_info(b"Men\xfc auf Deutsch, caf\xe9 en fran\xe7ais")]
        sublines = [_info(b"\x83\x81\x83\x6a\x83\x85\x81\x5b (Shift-JIS)")]
        for selector, (item_type, body) in items.items():
            target = sublines if selector.startswith(sub + b"/") else lines
            target.append(self._link(item_type, b"\xab" + selector[-12:] + b"\xbb", selector))
            self._serve(item_type, selector, body)
        lines.append(self._link(b"1", b"Untermen\xfc", sub))
        self._serve(b"1", sub, b"".join(sublines) + TERM)
        self._serve(b"1", LATIN1, b"".join(lines) + TERM)
        return [self._link(b"1", b"Not UTF-8", LATIN1)]

    def _build_robots(self) -> list[bytes]:
        # The rule that matters, and 15,000 that do not (about 450 KB).
        junk = b"".join(b"Disallow: /nothing/here/%d\r\n" % i for i in range(15_000))
        self._static[ROBOTS] = b"User-agent: *\r\nDisallow: /private\r\n" + junk
        self._static[PRIVATE] = self._link(b"0", b"Secret", PRIVATE + b"/secret.txt") + TERM
        self._static[PRIVATE + b"/secret.txt"] = b"robots.txt says no\r\n" + TERM
        return [self._link(b"1", b"Private", PRIVATE)]

    # -- what a mirror must hold ---------------------------------------------

    def expected(self) -> dict[tuple[bytes, bytes], bytes]:
        """(item type, selector) -> exact reply, for every item the mirror must store."""
        return dict(self._expected)

    def normal(self) -> dict[tuple[bytes, bytes], bytes]:
        """The same, for the normal part only (root menu included)."""
        return {
            key: reply
            for key, reply in self._expected.items()
            if key[1] in (b"", NORMAL) or key[1].startswith(NORMAL + b"/")
        }

    def trap_selectors(self) -> list[bytes]:
        """Trap menus asked for so far."""
        return [s for s in self.requests if s == TRAP or s.startswith(TRAP + b"/")]

    def count(self, selector: bytes) -> int:
        """How often ``selector`` was asked for."""
        return sum(1 for s in self.requests if s == selector)

    # -- answering -----------------------------------------------------------

    async def answer(self, stream: trio.SocketStream) -> None:
        """Serve one connection the way the selector asks."""
        try:
            if await self._deaf(stream):
                await trio.sleep_forever()
            selector = await _read_selector(stream)
            if selector is None:
                return
            self.requests.append(selector)
            self.times.append(time.monotonic())
            await self._reply(stream, selector)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            pass
        finally:
            await trio.aclose_forcefully(stream)

    async def _deaf(self, stream: trio.SocketStream) -> bool:
        """Peek at the request (leaving it unread); True for DEAF when that case is on."""
        if Case.DEAF not in self.cases:
            return False
        seen = b""
        with trio.move_on_after(10):
            for _ in range(100):
                seen = await stream.socket.recv(len(DEAF) + 2, socket.MSG_PEEK)
                if not seen or not DEAF.startswith(seen[: len(DEAF)]) or len(seen) >= len(DEAF):
                    break
                await trio.sleep(0.01)  # only part of the selector is in yet
        if seen.startswith(DEAF):
            self.requests.append(DEAF)
            self.times.append(time.monotonic())
            return True
        return False

    def behaviour(self, selector: bytes) -> str:
        """How ``selector`` is answered: ``static``, ``linger``, ``silent``, ``drip``,
        ``endless``, ``oversize``, ``reset``, ``trap`` or ``missing`` (a type-3 error)."""
        if selector in self._static:
            return "static"
        if selector in self._linger:
            return "linger"
        special = {
            SILENT: (Case.SILENT, "silent"),
            LORIS: (Case.LORIS, "drip"),
            ROBOTS: (Case.HOST_FILES, "drip"),
            ENDLESS: (Case.ENDLESS, "endless"),
            CAPS: (Case.HOST_FILES, "endless"),
            OVERSIZE: (Case.OVERSIZE, "oversize"),
            RESET: (Case.RESET, "reset"),
        }
        case, how = special.get(selector, (None, "missing"))
        if case in self.cases:
            return how
        if (selector == TRAP or selector.startswith(TRAP + b"/")) and Case.TRAP in self.cases:
            return "trap"
        return "missing"

    async def _reply(self, stream: trio.SocketStream, selector: bytes) -> None:
        how = self.behaviour(selector)
        if how == "static":
            await stream.send_all(self._static[selector])
        elif how == "silent":
            await trio.sleep_forever()
        elif how == "linger":
            await stream.send_all(self._linger[selector])
            await trio.sleep_forever()
        elif how == "drip":
            while True:
                await stream.send_all(b".")
                await trio.sleep(self.loris_interval)
        elif how == "endless":
            chunk = b"y" * 65536
            while True:
                await stream.send_all(chunk)
        elif how == "oversize":
            chunk = b"z" * 65536
            left = self.oversize
            while left > 0:
                await stream.send_all(chunk[:left])
                left -= len(chunk)
        elif how == "reset":
            await stream.send_all(b"the first part of a body that never ends properly\r\n" * 200)
            _reset(stream.socket)
        elif how == "trap":
            await stream.send_all(self._trap_menu(selector))
        else:
            shown = selector[:200].replace(b"\t", b" ").replace(b"\r", b" ").replace(b"\n", b" ")
            await stream.send_all(_error(b"'" + shown + b"' does not exist"))

    def _trap_menu(self, selector: bytes) -> bytes:
        lines = [_info(b"Deeper: " + selector[-60:])]
        lines += [self._link(b"1", b"Room %d" % i, selector + b"/%d" % i) for i in range(10)]
        return b"".join(lines) + TERM


async def _read_selector(stream: trio.SocketStream) -> bytes | None:
    buffer = b""
    with trio.move_on_after(10):
        while b"\n" not in buffer and len(buffer) < 8192:
            chunk = await stream.receive_some(8192)
            if not chunk:
                break
            buffer += chunk
    if not buffer:
        return None
    return decode_request(buffer.split(b"\n", 1)[0] + b"\n")[0]


def _reset(sock: trio.socket.SocketType) -> None:
    """Close with an RST instead of a FIN."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


async def serve_origin(
    origin: HostileOrigin,
    *,
    host: str = "127.0.0.1",
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``origin`` on a free loopback port until cancelled.

    ``await nursery.start(serve_origin, origin)`` gives the port.
    """
    if host not in ("127.0.0.1", "::1"):
        raise ValueError("the hostile origin listens on loopback only")
    listeners = await trio.open_tcp_listeners(0, host=host)
    origin.bind(host, listeners[0].socket.getsockname()[1])
    try:
        async with trio.open_nursery() as nursery:
            for listener in listeners:
                nursery.start_soon(trio.serve_listeners, origin.answer, [listener])
            task_status.started(origin.port)
    finally:
        for listener in listeners:
            await trio.aclose_forcefully(listener)


def selectors_of(keys: Iterable[tuple[bytes, bytes]]) -> set[bytes]:
    """The selectors of (type, selector) keys."""
    return {selector for _type, selector in keys}
