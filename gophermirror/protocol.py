"""The Gopher protocol, sans-IO: bytes in, values out.

Owns: item types (RFC 1436 and the common extensions), menu lines and menus
(parse and format on bytes, losslessly), gopher URLs (RFC 4266), request
encoding and response framing (where a body ends and which bytes were the
terminator).  Must not touch: sockets, files, clocks.  Every other layer
(client, server, exporter, tests) parses and formats menus through here.

The rule that runs through this module: what the peer sent is kept.  A menu
line with a fifth Gopher+ field, an odd port, a bare LF or no line ending at
all is parsed into a value that formats back to exactly the same bytes; a
response's terminator is split off but returned, never thrown away.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterator
from typing import Final

import attrs

from .errors import BadMenuLine, BadSelector, BadURL, TooLarge

# --------------------------------------------------------------------------
# Item types
# --------------------------------------------------------------------------

ITEM_TYPES: Final[dict[bytes, str]] = {
    b"0": "text",
    b"1": "menu",
    b"2": "CSO phone book",
    b"3": "error",
    b"4": "BinHex file",
    b"5": "DOS binary",
    b"6": "uuencoded file",
    b"7": "search",
    b"8": "telnet",
    b"9": "binary",
    b"+": "mirror server",
    b"g": "GIF image",
    b"I": "image",
    b"T": "tn3270",
    b"i": "info",
    b"h": "HTML",
    b"s": "sound",
    b"d": "document",
    b"p": "PNG image",
    b";": "video",
    b"c": "calendar",
    b"M": "MIME",
    b"P": "PDF",
    b"r": "RTF",
    b"X": "XML",
}
"""Known item types and a human name for each.  Unknown types are kept as
they are (``describe`` calls them "unknown"); nothing is dropped."""

#: Types whose body is line-oriented text that may end with a lone "." line.
TEXT_TYPES: Final = frozenset({b"0", b"1", b"7", b"h", b"c", b"X", b"M"})

#: Types that are not documents: never fetched by a mirror.
NON_FETCHABLE_TYPES: Final = frozenset({b"i", b"3", b"7", b"2", b"8", b"T", b"+"})

MENU: Final = b"1"
TEXT: Final = b"0"
INFO: Final = b"i"
ERROR: Final = b"3"


def describe(item_type: bytes) -> str:
    """A person's name for an item type; unknown types say so."""
    return ITEM_TYPES.get(item_type, f"unknown type {item_type!r}")


class Framing(enum.Enum):
    """How a response body is delimited."""

    TEXT = "text"
    """Read to EOF; a final lone-dot line, if present, is the terminator."""
    BINARY = "binary"
    """Read to EOF; every byte is body."""


def framing_for(item_type: bytes) -> Framing:
    """The framing a client should expect for ``item_type``."""
    return Framing.TEXT if item_type in TEXT_TYPES else Framing.BINARY


# --------------------------------------------------------------------------
# Menu lines
# --------------------------------------------------------------------------


@attrs.frozen
class MenuItem:
    """One menu line, exactly as received.

    Fields that were absent are ``None`` (an info line with no tabs has only
    ``display``).  ``format_menu_line(item) == raw line`` always holds.
    """

    type: bytes
    """The item type byte (length 1)."""
    display: bytes
    """The display string, as sent."""
    selector: bytes | None = None
    """The selector; ``None`` when the line had no second field."""
    host: bytes | None = None
    """The host field; ``None`` when absent."""
    port_raw: bytes | None = None
    """The port field as sent (may be out of range or not a number)."""
    extra: tuple[bytes, ...] = ()
    """Fields after the port: the Gopher+ ``+``/``?`` and anything else."""
    eol: bytes = b"\r\n"
    """The line ending as sent: ``b"\\r\\n"``, ``b"\\n"`` or ``b""`` (last line)."""

    @property
    def port(self) -> int | None:
        """The port as a number, or ``None`` when absent or not 1..65535."""
        raw = self.port_raw
        if raw is None:
            return None
        text = raw.strip()
        if not text.isdigit() or len(text) > 5:
            return None
        value = int(text)
        return value if 0 < value <= 65535 else None

    @property
    def is_info(self) -> bool:
        """An ``i`` (or ``3``) line: text, not a link."""
        return self.type in (INFO, ERROR)

    @property
    def is_url_link(self) -> bool:
        """An ``h``-style ``URL:`` link to another protocol."""
        return self.selector is not None and self.selector[:4] in (b"URL:", b"/URL")

    @property
    def is_gopher_plus(self) -> bool:
        """The line carries a Gopher+ marker in its fifth field."""
        return bool(self.extra) and self.extra[0][:1] in (b"+", b"?")

    def text(self) -> str:
        """The display string for a person (UTF-8, falling back to latin-1)."""
        return decode_for_humans(self.display)

    def replace(self, **changes: object) -> MenuItem:
        """A copy with some fields changed (e.g. host and port for re-serving)."""
        return attrs.evolve(self, **changes)  # type: ignore[arg-type]


@attrs.frozen
class RawLine:
    """A menu line that is not an item (empty, a lone ``.``, or unreadable).

    Kept so that a menu formats back to the bytes it came from.
    """

    data: bytes
    """The line's bytes without its ending."""
    eol: bytes
    """The line ending as sent."""
    reason: str
    """Why it is not an item (for reports)."""
    lineno: int = 0
    """Its 1-based line number in the menu."""


MenuLine = MenuItem | RawLine


def decode_for_humans(data: bytes) -> str:
    """Bytes to text for display only: UTF-8, else latin-1; never raises."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


_MAX_LINE: Final = 1 << 20


def parse_menu_line(
    line: bytes, eol: bytes = b"", *, url: object = None, lineno: int = 0
) -> MenuItem:
    """Parse one menu line (without its ending) into a ``MenuItem``.

    Raises ``BadMenuLine`` for an empty line, a NUL byte or a line longer
    than 1 MiB.  Everything else parses: missing fields become ``None`` and
    odd ports are kept raw (``MenuItem.port`` says whether they are usable).
    """
    if not line:
        raise BadMenuLine("empty line", url, lineno)
    if b"\x00" in line:
        raise BadMenuLine("NUL byte in line", url, lineno)
    if len(line) > _MAX_LINE:
        raise BadMenuLine(f"line of {len(line)} bytes", url, lineno)
    fields = line[1:].split(b"\t")
    n = len(fields)
    return MenuItem(
        type=line[:1],
        display=fields[0],
        selector=fields[1] if n > 1 else None,
        host=fields[2] if n > 2 else None,
        port_raw=fields[3] if n > 3 else None,
        extra=tuple(fields[4:]),
        eol=eol,
    )


def format_menu_line(item: MenuLine) -> bytes:
    """The bytes of one menu line, with its ending."""
    if isinstance(item, RawLine):
        return item.data + item.eol
    parts = [item.type + item.display]
    for field in (item.selector, item.host, item.port_raw):
        if field is None:
            break
        parts.append(field)
    else:
        parts.extend(item.extra)
    return b"\t".join(parts) + item.eol


def check_link(item: MenuItem, *, url: object = None, lineno: int = 0) -> None:
    """Raise ``BadMenuLine`` unless ``item`` is a followable link.

    A link needs a selector, a host and a port in 1..65535.
    """
    if item.selector is None or item.host is None or item.port_raw is None:
        raise BadMenuLine("missing fields (needs 4 TAB-separated fields)", url, lineno)
    if item.port is None:
        raise BadMenuLine(f"bad port {item.port_raw!r}", url, lineno)
    if not item.host.strip():
        raise BadMenuLine("empty host", url, lineno)


def split_lines(data: bytes) -> Iterator[tuple[bytes, bytes]]:
    """Yield ``(line, eol)`` pairs; ``eol`` is CRLF, LF, or empty on the last line.

    A lone CR not followed by LF stays inside the line.
    """
    start = 0
    size = len(data)
    find = data.find
    while start < size:
        nl = find(b"\n", start)
        if nl < 0:
            yield data[start:], b""
            return
        if nl > start and data[nl - 1] == 0x0D:
            yield data[start : nl - 1], b"\r\n"
        else:
            yield data[start:nl], b"\n"
        start = nl + 1


@attrs.frozen
class Menu:
    """A parsed menu body: every line, items and non-items, in order."""

    lines: tuple[MenuLine, ...]
    """All lines; ``format_menu(menu)`` gives back the body exactly."""

    @property
    def items(self) -> tuple[MenuItem, ...]:
        """The lines that parsed as items (info lines included)."""
        return tuple(line for line in self.lines if isinstance(line, MenuItem))

    @property
    def problems(self) -> tuple[RawLine, ...]:
        """Lines that are neither items nor blank: worth a warning."""
        return tuple(
            line for line in self.lines if isinstance(line, RawLine) and line.reason != "empty line"
        )


def parse_menu(body: bytes, *, url: object = None) -> Menu:
    """Parse a menu body (terminator already split off) line by line.

    Never raises: bad lines become ``RawLine`` values that keep their bytes.
    """
    # Almost every menu ends each line with CRLF and has no NUL: then one
    # C-level split finds the lines (2x faster than split_lines for big menus).
    raw = body.split(b"\r\n")
    if body.count(b"\n") == len(raw) - 1 and b"\x00" not in body:
        return Menu(tuple(_parse_crlf_lines(raw, url)))
    return Menu(tuple(_parse_any_lines(body, url)))


def _parse_crlf_lines(raw: list[bytes], url: object) -> list[MenuLine]:
    """``parse_menu`` for a body split on CRLF that holds no other LF and no NUL."""
    last = raw.pop()  # after the final CRLF: nothing, or a line without an ending
    lines: list[MenuLine] = []
    append = lines.append
    crlf = b"\r\n"
    for lineno, line in enumerate(raw, 1):
        if line and len(line) <= _MAX_LINE:
            fields = line[1:].split(b"\t")
            if len(fields) == 4:
                append(MenuItem(line[:1], fields[0], fields[1], fields[2], fields[3], (), crlf))
                continue
            append(_item_from_fields(line[:1], fields, crlf))
            continue
        append(_odd_line(line, crlf, url, lineno))
    if last:
        lines += _parse_any_lines(last, url, first_lineno=len(raw) + 1)
    return lines


def _item_from_fields(item_type: bytes, fields: list[bytes], eol: bytes) -> MenuItem:
    n = len(fields)
    return MenuItem(
        item_type,
        fields[0],
        fields[1] if n > 1 else None,
        fields[2] if n > 2 else None,
        fields[3] if n > 3 else None,
        tuple(fields[4:]),
        eol,
    )


def _odd_line(line: bytes, eol: bytes, url: object, lineno: int) -> MenuLine:
    """An empty, NUL-holding or overlong line: whatever ``parse_menu_line`` makes of it."""
    try:
        return parse_menu_line(line, eol, url=url, lineno=lineno)
    except BadMenuLine as exc:
        reason = exc.message.split(": ", 1)[-1]
        return RawLine(line, eol, reason, lineno)


def _parse_any_lines(body: bytes, url: object, first_lineno: int = 1) -> list[MenuLine]:
    """``parse_menu`` for any bytes: CRLF, LF or no ending, NULs, overlong lines."""
    lines: list[MenuLine] = []
    append = lines.append
    for lineno, (line, eol) in enumerate(split_lines(body), first_lineno):
        if line and b"\x00" not in line and len(line) <= _MAX_LINE:
            fields = line[1:].split(b"\t")
            if len(fields) == 4:
                append(MenuItem(line[:1], fields[0], fields[1], fields[2], fields[3], (), eol))
                continue
            append(_item_from_fields(line[:1], fields, eol))
            continue
        append(_odd_line(line, eol, url, lineno))
    return lines


def format_menu(menu: Menu | list[MenuLine] | tuple[MenuLine, ...]) -> bytes:
    """The bytes of a menu body (no terminator)."""
    lines = menu.lines if isinstance(menu, Menu) else menu
    return b"".join(format_menu_line(line) for line in lines)


def info_line(text: bytes | str, *, eol: bytes = b"\r\n") -> MenuItem:
    """An ``i`` line in the conventional form ``i<text>\\t\\terror.host\\t1``."""
    data = text.encode("utf-8") if isinstance(text, str) else text
    data = data.replace(b"\t", b" ").replace(b"\r", b" ").replace(b"\n", b" ")
    return MenuItem(INFO, data, b"", b"error.host", b"1", (), eol)


def link_line(
    item_type: bytes, display: bytes | str, selector: bytes, host: str | bytes, port: int
) -> MenuItem:
    """A well-formed link line with CRLF ending."""
    disp = display.encode("utf-8") if isinstance(display, str) else display
    disp = disp.replace(b"\t", b" ").replace(b"\r", b" ").replace(b"\n", b" ")
    h = host.encode("ascii") if isinstance(host, str) else host
    return MenuItem(item_type, disp, selector, h, str(port).encode("ascii"), (), b"\r\n")


# --------------------------------------------------------------------------
# Gopher URLs (RFC 4266)
# --------------------------------------------------------------------------

_UNRESERVED: Final = frozenset(
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~/!$&'()*+,;=:@"
)
_HEX: Final = "0123456789ABCDEF"


def percent_encode(data: bytes) -> str:
    """Percent-encode a selector for a URL (``/`` and sub-delims kept)."""
    out = []
    for byte in data:
        if byte in _UNRESERVED:
            out.append(chr(byte))
        else:
            out.append("%" + _HEX[byte >> 4] + _HEX[byte & 15])
    return "".join(out)


_PCT: Final = re.compile(rb"%([0-9A-Fa-f]{2})")


def percent_decode(text: str) -> bytes:
    """Undo ``percent_encode``; a ``%`` not followed by two hex digits stays."""
    raw = text.encode("utf-8")
    return _PCT.sub(lambda m: bytes([int(m.group(1), 16)]), raw)


@attrs.frozen
class GopherURL:
    """A gopher (or gophers) URL: where an item is and how to ask for it."""

    host: str
    """Host name or address (IPv6 without brackets), lower-cased."""
    port: int = 70
    """TCP port."""
    item_type: bytes = MENU
    """The type byte (not sent to the server)."""
    selector: bytes = b""
    """The selector bytes, exactly as sent to the server."""
    search: bytes | None = None
    """Search words after ``%09`` (sent after a TAB), or ``None``."""
    plus: bytes | None = None
    """A Gopher+ string after a second ``%09``, or ``None``."""
    tls: bool = False
    """``gophers://``: speak TLS."""

    @property
    def scheme(self) -> str:
        """``gopher`` or ``gophers``."""
        return "gophers" if self.tls else "gopher"

    @property
    def hostport(self) -> str:
        """``host:port`` with IPv6 addresses bracketed."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def request(self) -> bytes:
        """The request bytes to send for this URL."""
        return encode_request(self.selector, self.search, url=self)

    def with_selector(self, item_type: bytes, selector: bytes) -> GopherURL:
        """Another item on the same server."""
        return GopherURL(self.host, self.port, item_type, selector, None, None, self.tls)

    def __str__(self) -> str:
        return format_url(self)


def format_url(url: GopherURL) -> str:
    """The canonical RFC 4266 form; the port is always written."""
    path = "/" + url.item_type.decode("latin-1") + percent_encode(url.selector)
    if url.search is not None:
        path += "%09" + percent_encode(url.search)
        if url.plus is not None:
            path += "%09" + percent_encode(url.plus)
    return f"{url.scheme}://{url.hostport}{path}"


_HOST_RE: Final = re.compile(r"^[A-Za-z0-9._~!$&'()*+,;=%-]+$")


def parse_url(text: str) -> GopherURL:
    """Parse a ``gopher://`` or ``gophers://`` URL (RFC 4266).

    A bare ``host[:port][/path]`` is taken as gopher.  ``?`` is part of the
    selector (only ``%09`` introduces a search).  Raises ``BadURL``.
    """
    original = text
    text = text.strip()
    if not text:
        raise BadURL("empty URL", original)
    lowered = text.lower()
    tls = False
    if lowered.startswith("gopher://"):
        rest = text[9:]
    elif lowered.startswith("gophers://"):
        rest, tls = text[10:], True
    elif "://" in text:
        raise BadURL(f"not a gopher URL (scheme {text.split('://', 1)[0]!r})", original)
    else:
        rest = text
    if any(ord(c) < 0x21 or ord(c) == 0x7F for c in rest):
        raise BadURL("URL contains spaces or control characters (percent-encode them)", original)
    slash = rest.find("/")
    authority, path = (rest, "") if slash < 0 else (rest[:slash], rest[slash + 1 :])
    if "#" in path:
        path = path.split("#", 1)[0]
    if "@" in authority:
        raise BadURL("user info is not allowed in a gopher URL", original)
    host, port = _parse_authority(authority, original)
    if not path:
        return GopherURL(host, port, MENU, b"", None, None, tls)
    item_type = path[0].encode("utf-8")
    if len(item_type) != 1:
        raise BadURL("item type must be one ASCII character", original)
    parts = path[1:].split("%09", 2)
    selector = percent_decode(parts[0])
    if b"\t" in selector or b"\r" in selector or b"\n" in selector:
        raise BadURL("selector contains TAB, CR or LF", original)
    search = percent_decode(parts[1]) if len(parts) > 1 else None
    plus = percent_decode(parts[2]) if len(parts) > 2 else None
    return GopherURL(host, port, item_type, selector, search, plus, tls)


def _parse_authority(authority: str, original: str) -> tuple[str, int]:
    if not authority:
        raise BadURL("no host", original)
    if authority.startswith("["):
        end = authority.find("]")
        if end < 0:
            raise BadURL("unclosed [ in IPv6 host", original)
        host, after = authority[1:end], authority[end + 1 :]
        if not host or any(c not in "0123456789abcdefABCDEF:." for c in host):
            raise BadURL(f"bad IPv6 address {host!r}", original)
        if after and not after.startswith(":"):
            raise BadURL("junk after IPv6 address", original)
        port_text = after[1:] if after else ""
    else:
        host, _, port_text = authority.partition(":")
        if not _HOST_RE.match(host):
            raise BadURL(f"bad host {host!r}", original)
    if port_text == "":
        port = 70
    elif port_text.isdigit() and len(port_text) <= 5 and 0 < int(port_text) <= 65535:
        port = int(port_text)
    else:
        raise BadURL(f"bad port {port_text!r}", original)
    return host.lower(), port


def url_for_item(item: MenuItem, *, tls: bool = False) -> GopherURL:
    """The URL a menu link points at; ``BadMenuLine`` if it is not a link."""
    check_link(item)
    assert item.selector is not None and item.host is not None and item.port is not None
    host = item.host.strip().decode("latin-1").lower()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return GopherURL(host, item.port, item.type, item.selector, None, None, tls)


# --------------------------------------------------------------------------
# Requests
# --------------------------------------------------------------------------


def encode_request(selector: bytes, search: bytes | None = None, *, url: object = None) -> bytes:
    """``selector [TAB search] CRLF``; raises ``BadSelector`` on TAB/CR/LF."""
    for part in (selector, search or b""):
        if b"\t" in part or b"\r" in part or b"\n" in part:
            raise BadSelector("selector or search contains TAB, CR or LF", url)
    if search is None:
        return selector + b"\r\n"
    return selector + b"\t" + search + b"\r\n"


def decode_request(data: bytes) -> tuple[bytes, bytes | None, bytes | None]:
    """Split a received request line (ending included or not) for a server.

    Returns ``(selector, search, plus)``.
    """
    if data.endswith(b"\r\n"):
        data = data[:-2]
    elif data.endswith(b"\n"):
        data = data[:-1]
    parts = data.split(b"\t", 2)
    return (
        parts[0],
        parts[1] if len(parts) > 1 else None,
        parts[2] if len(parts) > 2 else None,
    )


# --------------------------------------------------------------------------
# Responses
# --------------------------------------------------------------------------

TERMINATORS: Final = (b".\r\n", b".\n", b".")


def split_terminator(data: bytes) -> tuple[bytes, bytes]:
    """Split a text/menu response into ``(body, terminator)``.

    The terminator is a final line that is a lone ``.`` (ending CRLF, LF or
    nothing), at the very start or right after a newline.  ``body +
    terminator == data`` always.  Nothing else is touched: ``..`` lines
    stay as they are (no un-dot-stuffing).
    """
    for term in TERMINATORS:
        if data.endswith(term):
            cut = len(data) - len(term)
            if cut == 0 or data[cut - 1] == 0x0A:
                return data[:cut], data[cut:]
    return data, b""


@attrs.frozen
class Response:
    """A complete reply: the body and the framing, kept apart."""

    body: bytes
    """What the item is: the bytes before the terminator."""
    terminator: bytes
    """The terminator bytes as sent (``b""`` when none)."""

    @property
    def raw(self) -> bytes:
        """Exactly what the server sent."""
        return self.body + self.terminator

    @property
    def terminated(self) -> bool:
        """Whether a lone-dot terminator line was present."""
        return bool(self.terminator)


@attrs.define(eq=False)
class ResponseReader:
    """Collects a reply fed in chunks, like h11's ``receive_data``.

    ``receive_data(b"")`` means the server closed the connection; then
    ``response()`` gives the body and terminator.  Over ``max_size`` bytes
    raises ``TooLarge`` at once and drops what it held.
    """

    framing: Framing = Framing.TEXT
    max_size: int | None = None
    url: object = None
    _chunks: list[bytes] = attrs.field(factory=list, init=False)
    _size: int = attrs.field(default=0, init=False)
    _eof: bool = attrs.field(default=False, init=False)

    @property
    def size(self) -> int:
        """Bytes received so far."""
        return self._size

    @property
    def closed(self) -> bool:
        """Whether EOF was seen."""
        return self._eof

    def receive_data(self, data: bytes) -> None:
        """Feed bytes; ``b""`` marks the end of the reply."""
        if self._eof:
            if data:
                raise RuntimeError("data after EOF")
            return
        if not data:
            self._eof = True
            return
        self._size += len(data)
        if self.max_size is not None and self._size > self.max_size:
            self._chunks.clear()
            raise TooLarge(f"reply exceeds {self.max_size} bytes", self.url)
        self._chunks.append(data)

    def response(self) -> Response:
        """The finished reply; only after EOF."""
        if not self._eof:
            raise RuntimeError("response() before EOF")
        data = b"".join(self._chunks)
        if self.framing is Framing.TEXT:
            body, term = split_terminator(data)
            return Response(body, term)
        return Response(data, b"")


def error_message(body: bytes) -> bytes | None:
    """If a reply is a gopher error item, its message; else ``None``.

    A reply counts as an error when its first line is a type ``3`` menu line
    with at least one TAB (pygopherd: ``3'<sel>' does not exist...``) and no
    later line is an ordinary link.
    """
    if not body.startswith(b"3"):
        return None
    lines = list(split_lines(body[:4096]))
    first, _ = lines[0]
    if b"\t" not in first:
        return None
    for line, _ in lines[1:]:
        if line and line[:1] not in (b"3", b"i", b"."):
            return None
    return first[1:].split(b"\t", 1)[0]
