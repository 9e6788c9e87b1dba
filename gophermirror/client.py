"""The gopher client: one request, one reply, over trio streams.

Owns: connecting (IPv4, IPv6, TLS for ``gophers://``), the timeouts, the
size cap, and turning socket trouble into typed errors that carry the URL.
Framing and parsing are the protocol module's; this module only moves
bytes.  Must not touch: files, the store, politeness (the crawler's).
"""

from __future__ import annotations

import ssl
from typing import Final

import attrs
import trio

from .errors import ConnectError, ConnectionReset, GopherTimeout, ServerError
from .protocol import GopherURL, ResponseReader, error_message, framing_for, parse_url

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


async def open_stream(url: GopherURL, limits: Limits = DEFAULT_LIMITS) -> trio.abc.Stream:
    """Connect to the server of ``url`` (TLS when it says ``gophers``)."""
    try:
        with trio.fail_after(limits.connect_timeout):
            tcp = await trio.open_tcp_stream(url.host, url.port)
            if not url.tls:
                return tcp
            context = ssl.create_default_context()
            if not limits.tls_verify:
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            stream = trio.SSLStream(tcp, context, server_hostname=url.host)
            try:
                await stream.do_handshake()
            except BaseException:
                await trio.aclose_forcefully(tcp)
                raise
            return stream
    except trio.TooSlowError:
        raise GopherTimeout(f"no connection within {limits.connect_timeout:g} s", url) from None
    except (OSError, trio.BrokenResourceError) as exc:
        raise ConnectError(_reason(exc), url) from None


async def fetch(
    url: GopherURL | str,
    limits: Limits = DEFAULT_LIMITS,
    *,
    check_error: bool = True,
) -> FetchResult:
    """Fetch one item and return its body and framing.

    Raises ``ConnectError``, ``GopherTimeout``, ``ConnectionReset``,
    ``TooLarge``, and (unless ``check_error`` is false) ``ServerError``
    when the reply is a type-3 error item.
    """
    if isinstance(url, str):
        url = parse_url(url)
    request = url.request()
    reader = ResponseReader(framing_for(url.item_type), limits.max_size, url)
    start = trio.current_time()
    stream = await open_stream(url, limits)
    try:
        with trio.fail_after(limits.total_timeout):
            await stream.send_all(request)
            while True:
                with trio.fail_after(limits.idle_timeout):
                    chunk = await stream.receive_some(_READ_CHUNK)
                reader.receive_data(bytes(chunk))
                if not chunk:
                    break
    except trio.TooSlowError:
        raise GopherTimeout(
            f"reply not finished in time ({reader.size} bytes received)", url
        ) from None
    except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
        raise ConnectionReset(
            f"connection broken after {reader.size} bytes: {_reason(exc)}", url
        ) from None
    finally:
        await trio.aclose_forcefully(stream)
    response = reader.response()
    if check_error and len(response.body) < 8192:
        message = error_message(response.body)
        if message is not None:
            text = message.decode("utf-8", "replace").strip() or "error item"
            raise ServerError(f"server error: {text}", url)
    return FetchResult(url, response.body, response.terminator, trio.current_time() - start)


def _reason(exc: BaseException) -> str:
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, OSError) and cause.strerror:
            return cause.strerror
        cause = cause.__cause__ or cause.__context__
    return str(exc) or type(exc).__name__
