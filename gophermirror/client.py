"""The gopher client: one request, one reply, over trio streams.

Owns: connecting (IPv4, IPv6, TLS for ``gophers://``), the timeouts, the
size cap, and turning socket trouble into typed errors that carry the URL.
Framing and parsing are the protocol module's; this module only moves
bytes.  Must not touch: files, the store, politeness (the crawler's).
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Awaitable, Callable
from typing import Final

import attrs
import trio

from .errors import ConnectError, ConnectionReset, GopherTimeout, ServerError
from .protocol import (
    Framing,
    GopherURL,
    ResponseReader,
    error_message,
    framing_for,
    parse_url,
)

MiB: Final = 1 << 20


@attrs.frozen
class Limits:
    """How long to wait and how much to accept for one fetch."""

    connect_timeout: float = 10.0
    """Seconds to open the connection (and finish TLS)."""
    idle_timeout: float = 30.0
    """Seconds the server may stay silent mid-reply."""
    total_timeout: float = 300.0
    """Seconds for the whole exchange (defeats a byte-a-second sender)."""
    max_size: int = 64 * MiB
    """Largest reply accepted; past it ``TooLarge`` and nothing is kept."""
    tls_verify: bool = True
    """Check the certificate of ``gophers://`` servers."""


DEFAULT_LIMITS: Final = Limits()


@attrs.frozen
class FetchResult:
    """What a server sent for one URL."""

    url: GopherURL
    """The URL asked for."""
    body: bytes
    """The reply without its terminator line."""
    terminator: bytes
    """The lone-dot terminator as sent, or ``b""``."""
    elapsed: float
    """Seconds from connect to EOF."""

    @property
    def item_type(self) -> bytes:
        """The item type the URL asked for."""
        return self.url.item_type

    @property
    def raw(self) -> bytes:
        """Exactly the bytes the server sent."""
        return self.body + self.terminator


_READ_CHUNK: Final = 65536


def _ip_family(host: str) -> int | None:
    """The address family of an IP literal, or None for a name."""
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            socket.inet_pton(family, host)
        except OSError:
            continue
        return family
    return None


async def _connect(host: str, port: int) -> trio.socket.SocketType:
    """A connected TCP socket; an IP literal skips name resolution and happy eyeballs.

    ``trio.open_tcp_stream`` resolves the name and races the addresses, which
    costs more than the whole exchange with a server on loopback.
    """
    family = _ip_family(host)
    if family is None:
        return (await trio.open_tcp_stream(host, port)).socket
    sock = trio.socket.socket(family, socket.SOCK_STREAM)
    try:
        await sock.connect((host, port))
    except BaseException:
        sock.close()
        raise
    return sock


async def _open(
    url: GopherURL, limits: Limits
) -> trio.socket.SocketType | trio.SSLStream[trio.SocketStream]:
    """A plain socket for ``gopher://``, a TLS stream for ``gophers://``."""
    try:
        with trio.fail_after(limits.connect_timeout):
            sock = await _connect(url.host, url.port)
            if not url.tls:
                return sock
            context = ssl.create_default_context()
            if not limits.tls_verify:
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            # https_compatible: many gophers servers close without TLS close_notify;
            # gopher has no length field, so that EOF is the end of the reply.
            stream = trio.SSLStream(
                trio.SocketStream(sock), context, server_hostname=url.host, https_compatible=True
            )
            try:
                await stream.do_handshake()
            except BaseException:
                sock.close()
                raise
            return stream
    except trio.TooSlowError:
        raise GopherTimeout(f"no connection within {limits.connect_timeout:g} s", url) from None
    except (OSError, trio.BrokenResourceError) as exc:
        raise ConnectError(_reason(exc), url) from None
    except ValueError as exc:  # a host name IDNA refuses (a 64-byte label, "a..b"), a NUL
        raise ConnectError(f"bad host name: {exc}", url) from None


async def fetch(
    url: GopherURL | str,
    limits: Limits = DEFAULT_LIMITS,
    *,
    check_error: bool = True,
) -> FetchResult:
    """Fetch one item and return its body and framing.

    Raises ``ConnectError``, ``GopherTimeout``, ``ConnectionReset``,
    ``TooLarge``, and (unless ``check_error`` is false) ``ServerError``
    when the reply is a type-3 error item.  A text or menu reply that
    already ends with its lone-dot line when the idle timeout fires is
    complete: some servers never close the connection.
    """
    if isinstance(url, str):
        url = parse_url(url)
    request = url.request()
    reader = ResponseReader(framing_for(url.item_type), limits.max_size, url)
    start = trio.current_time()
    conn = await _open(url, limits)
    # Plain gopher talks to the trio socket itself: a SocketStream's checks
    # and wrappers cost a tenth of a loopback fetch.
    send_all: Callable[[bytes], Awaitable[None]]
    receive: Callable[[int], Awaitable[bytes | bytearray]]
    if isinstance(conn, trio.SSLStream):
        send_all, receive = conn.send_all, conn.receive_some
    else:
        sock = conn

        async def send_to_socket(data: bytes) -> None:
            view = memoryview(data)
            while view:
                view = view[await sock.send(view) :]

        send_all, receive = send_to_socket, sock.recv
    try:
        with trio.fail_after(limits.total_timeout):
            await send_all(request)
            # One idle scope whose deadline moves on with each chunk: the same
            # timeout as a fail_after per chunk, without a scope per chunk.
            tail = b""
            with trio.CancelScope() as idle:
                while True:
                    idle.deadline = trio.current_time() + limits.idle_timeout
                    chunk = await receive(_READ_CHUNK)
                    reader.receive_data(bytes(chunk))
                    if not chunk:
                        break
                    tail = tail[-4:] + chunk[-4:]
            if idle.cancelled_caught:
                if not _terminated(reader, tail):
                    raise trio.TooSlowError
                reader.receive_data(b"")  # a whole text reply, the server just never closed
    except trio.TooSlowError:
        raise GopherTimeout(
            f"reply not finished in time ({reader.size} bytes received)", url
        ) from None
    except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
        raise ConnectionReset(
            f"connection broken after {reader.size} bytes: {_reason(exc)}", url
        ) from None
    finally:
        if isinstance(conn, trio.SSLStream):
            await trio.aclose_forcefully(conn)
        else:
            # Closing a plain socket cannot block: no cancel scope, no checkpoint.
            conn.close()
    response = reader.response()
    result = FetchResult(url, response.body, response.terminator, trio.current_time() - start)
    if check_error:
        error = server_error(result)
        if error is not None:
            raise error
    return result


def server_error(result: FetchResult) -> ServerError | None:
    """The ``ServerError`` a reply stands for, if it is a type-3 error item.

    Only small replies are looked at: an error item is a line or two.
    """
    if len(result.body) >= 8192:
        return None
    message = error_message(result.body)
    if message is None:
        return None
    text = message.decode("utf-8", "replace").strip() or "error item"
    return ServerError(f"server error: {text}", result.url)


def _terminated(reader: ResponseReader, tail: bytes) -> bool:
    """Whether a text reply already ends with its lone-dot line (CRLF or LF ended)."""
    if reader.framing is not Framing.TEXT:
        return False
    if tail.endswith((b"\n.\r\n", b"\n.\n")):
        return True
    return tail in (b".\r\n", b".\n") and reader.size == len(tail)


def _reason(exc: BaseException) -> str:
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, OSError) and cause.strerror:
            return cause.strerror
        cause = cause.__cause__ or cause.__context__
    return str(exc) or type(exc).__name__
