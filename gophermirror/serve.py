"""The built-in gopher server: a mirror served as the origin served it.

Owns: listening (trio), reading one request line per connection within a
time and size limit, resolving the selector through the manifest (never by
joining it onto a path), sending the item byte for byte (stored body plus
the origin's terminator; menus with only their local links' host, port and,
where needed, selector changed), the connection cap, the request log.
Must not touch: writing the store (it opens the manifest read-only, so a
``mirror`` run can update the store while it serves), menus' meaning
(``maps.py`` rewrites them).

Resolution of a request selector, first match wins:

1. ``latest`` or ``/latest``: the generated latest menu;
2. the exact origin selector (``maps.MirrorIndex.resolve_selector``);
3. the path form ``/<manifest path>`` that on-disk gophermaps use, and
   ``/atom/<name>.xml``;
4. the empty selector or ``/``: the generated root menu;
5. anything else: a type-3 error line.

Every file is opened only after ``os.path.realpath`` shows it inside ROOT
(and outside ``ROOT/.gophermirror``), without following a final symlink,
and only if it is a regular file.
"""

from __future__ import annotations

import errno
import os
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Final

import attrs
import trio

from . import maps
from .errors import StoreError
from .paths import MENU_BODY_NAME
from .protocol import decode_request, format_menu_line, info_line
from .store import Entry, manifest_path, read_entries

LogFn = Callable[[str], None]

SMALL_REPLY: Final = 256 * 1024
"""Replies up to this size are read at once and sent with one ``send_all``."""

CHUNK: Final = 256 * 1024
"""Chunk size for larger files (each chunk read in a worker thread)."""

REFRESH_EVERY: Final = 0.5
"""Seconds between checks of the manifest for changes."""

MENU_CACHE_ITEMS: Final = 4096
"""Rewritten menus kept in memory (the cache is emptied when full)."""

TERMINATOR: Final = b".\r\n"


def error_reply(message: bytes) -> bytes:
    """A type-3 error menu: one line and a terminator."""
    return format_menu_line(info_line(message).replace(type=b"3")) + TERMINATOR


def _shown(selector: bytes, limit: int = 120) -> bytes:
    """A selector safe to put in an error line: no controls, at most ``limit`` bytes."""
    cut = selector[:limit]
    out = bytes(b if b >= 0x20 and b != 0x7F else 0x3F for b in cut)
    return out + (b"..." if len(selector) > limit else b"")


def not_found_reply(selector: bytes) -> bytes:
    """The reply to a selector the mirror does not have."""
    return error_reply(b"'" + _shown(selector) + b"' not in this mirror")


BUSY_REPLY: Final = error_reply(b"Server busy, try again later")
TOO_LONG_REPLY: Final = error_reply(b"Request too long")
UNREADABLE_REPLY: Final = error_reply(b"Item not readable on the server")


def log_selector(selector: bytes, limit: int = 300) -> str:
    """A selector as one log-safe string: printable ASCII kept, the rest ``\\xNN``."""
    out = []
    for b in selector[:limit]:
        if 0x20 <= b < 0x7F and b not in (0x22, 0x5C):
            out.append(chr(b))
        else:
            out.append(f"\\x{b:02x}")
    return "".join(out) + ("..." if len(selector) > limit else "")


def _default_log(line: str) -> None:
    try:
        sys.stderr.write(line + "\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


# --------------------------------------------------------------------------
# The manifest, read-only
# --------------------------------------------------------------------------


def _manifest_stamp(root: Path) -> tuple[int, ...]:
    stamp: list[int] = []
    base = manifest_path(root)
    for path in (base, base.with_name(base.name + "-wal")):
        try:
            st = os.stat(path)
        except OSError:
            stamp += [0, 0, 0]
        else:
            stamp += [st.st_mtime_ns, st.st_size, st.st_ino]
    return tuple(stamp)


# --------------------------------------------------------------------------
# What to send
# --------------------------------------------------------------------------


@attrs.frozen
class Reply:
    """What the server sends for one request."""

    data: bytes = b""
    """Bytes to send at once (the whole reply, or the part after a file)."""
    fd: int | None = None
    """An open file to send first (large files), or None."""
    size: int = 0
    """Bytes in ``fd``."""
    status: int = 0
    """0 for an item, 3 for an error (the log's status)."""


@attrs.define(eq=False)
class MirrorView:
    """The mirror as the server sees it: the index, caches, resolution."""

    root: Path
    """The mirror root (absolute)."""
    host: str
    """Advertised host written into menus."""
    port: int
    """Advertised port written into menus."""
    log: LogFn
    """Where problems are reported."""
    root_real: str = ""
    index: maps.MirrorIndex = attrs.Factory(lambda: maps.MirrorIndex.build(()))
    generation: int = 0
    _stamp: tuple[int, ...] = ()
    _checked: float = -1e9
    _refreshing: bool = False
    _menus: dict[str, tuple[str, int, bytes]] = attrs.Factory(dict)
    _root_menu: tuple[int, float, bytes] | None = None
    _starts: tuple[int, list[tuple[str, int, list[Entry]]]] | None = None

    def __attrs_post_init__(self) -> None:
        self.root_real = os.path.realpath(self.root)

    # -- the index -------------------------------------------------------------
    async def refresh(self, *, force: bool = False) -> None:
        """Reload the index if the manifest changed (checked every ``REFRESH_EVERY`` s).

        The rows are read and indexed in a worker thread; requests go on
        with the old index meanwhile.
        """
        now = trio.current_time()
        if self._refreshing or (not force and now - self._checked < REFRESH_EVERY):
            return
        self._checked = now
        stamp = _manifest_stamp(self.root)
        if stamp == self._stamp and not force:
            return
        self._refreshing = True
        try:
            index = await trio.to_thread.run_sync(_load_index, self.root)
        except StoreError as exc:
            if force:
                raise
            self.log(f"gophermirror serve: keeping the old index: {exc}")
            return
        finally:
            self._refreshing = False
        self.index = index
        self._stamp = stamp
        self.generation += 1
        self._menus.clear()
        self._root_menu = None
        self._starts = None

    async def _hole_starts(self) -> list[tuple[str, int, list[Entry]]]:
        """Each hole's start menus (computed in a worker thread, once per index)."""
        cached = self._starts
        if cached is not None and cached[0] == self.generation:
            return cached[1]
        generation, index = self.generation, self.index
        starts = await trio.to_thread.run_sync(_start_menus, self.root_real, index)
        self._starts = (generation, starts)
        return starts

    # -- resolution --------------------------------------------------------------
    async def reply_for(self, selector: bytes) -> Reply:
        """Resolve ``selector`` and build the reply (never raises on client input)."""
        if selector in (b"latest", b"/latest", b"/latest/"):
            latest = self._latest()
            if latest is not None:
                return Reply(latest)
        index = self.index
        entry = index.resolve_selector(selector)
        if entry is None:
            entry = index.resolve_path(selector)
        if entry is not None:
            return self._entry_reply(entry)
        if selector.startswith(b"/" + maps.ATOM_DIR.encode() + b"/"):
            atom = self._atom(selector[len(maps.ATOM_DIR) + 2 :])
            if atom is not None:
                return atom
        if selector in (b"", b"/"):
            return Reply(await self._generated_root())
        return Reply(not_found_reply(selector), status=3)

    def _entry_reply(self, entry: Entry) -> Reply:
        if entry.kind == "menu":
            menu = self._menu(entry)
            if menu is None:
                return Reply(UNREADABLE_REPLY, status=3)
            return Reply(menu + entry.terminator)
        fd = maps.open_inside(self.root_real, os.path.join(self.root_real, entry.path))
        if fd is None:
            return Reply(UNREADABLE_REPLY, status=3)
        try:
            size = os.fstat(fd).st_size
            if size <= SMALL_REPLY:
                data = _read_all(fd)
                os.close(fd)
                return Reply(data + entry.terminator)
        except OSError:
            os.close(fd)
            return Reply(UNREADABLE_REPLY, status=3)
        return Reply(entry.terminator, fd=fd, size=size)

    def _menu(self, entry: Entry) -> bytes | None:
        cached = self._menus.get(entry.path)
        if cached is not None and cached[0] == entry.sha256 and cached[1] == self.generation:
            return cached[2]
        body_path = os.path.join(self.root_real, entry.path, MENU_BODY_NAME)
        fd = maps.open_inside(self.root_real, body_path)
        if fd is None:
            return None
        try:
            body = _read_all(fd)
        except OSError:
            return None
        finally:
            os.close(fd)
        menu = maps.rewrite_menu_for_server(
            self.index,
            entry,
            body,
            host=self.host,
            port=self.port,
            selector_style="origin",
            index=self.index,
        )
        if len(self._menus) >= MENU_CACHE_ITEMS:
            self._menus.clear()
        self._menus[entry.path] = (entry.sha256, self.generation, menu)
        return menu

    def _latest(self) -> bytes | None:
        source = maps.generated_source(self.root_real, maps.LATEST_DIR)
        if source is None:
            return None
        return maps.fill_host_port(source, host=self.host, port=self.port) + TERMINATOR

    def _atom(self, name: bytes) -> Reply | None:
        try:
            text = name.decode("ascii")
        except UnicodeDecodeError:
            return None
        if not maps.ATOM_NAME_RE.match(text):
            return None
        data = maps.read_inside(self.root_real, f"{maps.ATOM_DIR}/{text}")
        return None if data is None else Reply(data)

    async def _generated_root(self) -> bytes:
        now = time.monotonic()
        cached = self._root_menu
        if cached is not None and cached[0] == self.generation and now - cached[1] < 2.0:
            return cached[2]
        generation = self.generation
        lines = maps.root_menu_lines(
            await self._hole_starts(),
            latest=maps.latest_exists(self.root_real),
            atom_names=maps.atom_names(self.root_real),
        )
        source = b"".join(format_menu_line(line) for line in lines)
        data = maps.fill_host_port(source, host=self.host, port=self.port) + TERMINATOR
        self._root_menu = (generation, now, data)
        return data


def _load_index(root: Path) -> maps.MirrorIndex:
    return maps.MirrorIndex.build(read_entries(root))


def _start_menus(root_real: str, index: maps.MirrorIndex) -> list[tuple[str, int, list[Entry]]]:
    by_hole: dict[tuple[str, int], list[Entry]] = {hole: [] for hole in index.holes}
    for entry in index.by_key.values():
        by_hole[(entry.host, entry.port)].append(entry)

    def read(entry: Entry) -> bytes | None:
        return maps.read_inside(root_real, f"{entry.path}/{MENU_BODY_NAME}")

    return [
        (host, port, maps.start_menus(by_hole[(host, port)], read)) for host, port in index.holes
    ]


def _read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 1 << 20):
        chunks.append(chunk)
    return b"".join(chunks)


# --------------------------------------------------------------------------
# Connections
# --------------------------------------------------------------------------


class RequestTooLong(Exception):
    """The request line grew past ``max_request`` bytes."""


async def read_request(stream: trio.abc.ReceiveStream, max_request: int) -> bytes | None:
    """One request line (ending included), or what came before EOF; None if nothing came.

    Raises ``RequestTooLong`` past ``max_request`` bytes without a line end.
    """
    buffer = bytearray()
    while True:
        chunk = await stream.receive_some(4096)
        if not chunk:
            return bytes(buffer) if buffer else None
        start = len(buffer)
        buffer += chunk
        newline = buffer.find(b"\n", start)
        if newline >= 0:
            if newline + 1 > max_request + 2:
                raise RequestTooLong
            return bytes(buffer[: newline + 1])
        if len(buffer) > max_request + 2:
            raise RequestTooLong


@attrs.define(eq=False)
class GopherServer:
    """One running server: its view of the mirror, limits and counters."""

    view: MirrorView
    """What it serves."""
    log: LogFn
    """Log sink (request lines unless ``quiet``, and problems)."""
    quiet: bool = False
    """No request lines."""
    max_connections: int = 256
    """Connections served at once; beyond it a short "busy" reply."""
    request_timeout: float = 10.0
    """Seconds for the request line, and for each chunk of a reply to go out."""
    max_request: int = 4096
    """Longest request line (without its ending)."""
    active: int = 0
    """Connections being served now."""
    refusing: int = 0
    """Connections being told "busy" now."""
    served: int = 0
    """Requests answered so far."""
    _log_second: int = -1
    _log_stamp: str = ""

    async def accept_loop(self, listener: trio.SocketListener, nursery: trio.Nursery) -> None:
        """Accept forever; each connection is handled in ``nursery``."""
        while True:
            try:
                stream = await listener.accept()
            except OSError as exc:
                if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS):
                    self.log(f"gophermirror serve: accept: {exc.strerror}; pausing")
                    await trio.sleep(0.1)
                    continue
                raise
            if self.active < self.max_connections:
                self.active += 1
                nursery.start_soon(self.handle, stream)
            elif self.refusing < self.max_connections:
                self.refusing += 1
                nursery.start_soon(self.refuse, stream)
            else:
                await trio.aclose_forcefully(stream)

    async def refuse(self, stream: trio.SocketStream) -> None:
        """Tell a connection over the cap that the server is busy, and close it."""
        try:
            with trio.move_on_after(1.0):
                await stream.send_all(BUSY_REPLY)
            self._log_request(stream, b"(busy)", 3, len(BUSY_REPLY))
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            pass
        finally:
            self.refusing -= 1
            await trio.aclose_forcefully(stream)

    async def handle(self, stream: trio.SocketStream) -> None:
        """Serve one connection: read a request, send the reply, close."""
        try:
            await self._handle(stream)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            pass
        except Exception as exc:  # never let one client take the server down
            self.log(f"gophermirror serve: internal error: {type(exc).__name__}: {exc}")
        finally:
            self.active -= 1
            await trio.aclose_forcefully(stream)

    async def _handle(self, stream: trio.SocketStream) -> None:
        try:
            with trio.move_on_after(self.request_timeout) as scope:
                request = await read_request(stream, self.max_request)
        except RequestTooLong:
            with trio.move_on_after(self.request_timeout):
                await stream.send_all(TOO_LONG_REPLY)
            self._log_request(stream, b"(request too long)", 3, len(TOO_LONG_REPLY))
            return
        if scope.cancelled_caught:
            self._log_request(stream, b"(no request: timeout)", 3, 0)
            return
        if request is None:
            return
        selector, _search, _plus = decode_request(request)
        await self.view.refresh()
        reply = await self.view.reply_for(selector)
        sent = await self._send(stream, reply)
        self.served += 1
        self._log_request(stream, selector, reply.status, sent)

    async def _send(self, stream: trio.SocketStream, reply: Reply) -> int:
        sent = 0
        fd = reply.fd
        try:
            if fd is not None:
                offset = 0
                while offset < reply.size:
                    chunk = await trio.to_thread.run_sync(os.pread, fd, CHUNK, offset)
                    if not chunk:
                        break
                    with trio.fail_after(self.request_timeout):
                        await stream.send_all(chunk)
                    offset += len(chunk)
                    sent += len(chunk)
            if reply.data:
                with trio.fail_after(max(self.request_timeout, len(reply.data) / 65536)):
                    await stream.send_all(reply.data)
                sent += len(reply.data)
        except trio.TooSlowError:
            pass
        finally:
            if fd is not None:
                os.close(fd)
        return sent

    def _log_request(
        self, stream: trio.SocketStream, selector: bytes, status: int, size: int
    ) -> None:
        if self.quiet:
            return
        try:
            peer = stream.socket.getpeername()[0]
        except OSError:
            peer = "-"
        now = int(time.time())
        if now != self._log_second:
            self._log_second = now
            self._log_stamp = time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now))
        self.log(f'{peer} - - [{self._log_stamp}] "{log_selector(selector)}" {status} {size}')


def _menu_host(host: str) -> str:
    """The host to write into menus when none is given: the bound one, if specific."""
    if host in ("", "0.0.0.0", "::"):
        return socket.getfqdn()
    return host


async def serve(
    root: Path | str,
    *,
    host: str = "127.0.0.1",
    port: int = 70,
    advertise: tuple[str, int] | None = None,
    quiet: bool = False,
    log: LogFn | None = None,
    max_connections: int = 256,
    request_timeout: float = 10.0,
    max_request: int = 4096,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve the mirror at ``root`` until cancelled.

    ``await nursery.start(serve, root, port=0)`` gives the bound port.
    ``advertise`` is the host and port written into menus (default: the
    bound address and port).  Raises ``StoreError`` if ``root`` is not a
    store.
    """
    log = log or _default_log
    root = Path(root).absolute()
    if not manifest_path(root).is_file():
        raise StoreError("not a gophermirror store (no .gophermirror/manifest.sqlite)", root)
    listeners = await trio.open_tcp_listeners(port, host=host or None)
    try:
        bound = listeners[0].socket.getsockname()[1]
        menu_host, menu_port = advertise or (_menu_host(host), bound)
        view = MirrorView(root, menu_host, menu_port, log)
        await view.refresh(force=True)
        server = GopherServer(
            view,
            log,
            quiet=quiet,
            max_connections=max_connections,
            request_timeout=request_timeout,
            max_request=max_request,
        )
        if not quiet:
            names = ", ".join(f"{x.socket.getsockname()[0]}:{bound}" for x in listeners)
            log(
                f"gophermirror serve: {root} on {names}, menus say {menu_host}:{menu_port}"
                f" ({len(view.index)} items)"
            )
        async with trio.open_nursery() as nursery:
            for listener in listeners:
                nursery.start_soon(server.accept_loop, listener, nursery)
            task_status.started(bound)
    finally:
        for listener in listeners:
            await trio.aclose_forcefully(listener)
