"""Helpers for browsing a re-served mirror with real peers (tests/test_browse_peers.py).

Owns: ``BuiltinServer`` (``python -m gophermirror serve`` as a subprocess,
started and stopped like the Debian peers of ``tests/peers.py``) and a model
of what gophernicus 3.1.1 does to the files it sends
(``gophernicus_sends_as_text``, ``gophernicus_text``), written from its
source (``src/file.c``, ``src/string.c``, ``src/menu.c`` at tag 3.1.1) and
checked against the running server by the browse tests.
Must not touch: gophermirror's product code, anything but 127.0.0.1.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Final

from tests.peers import PeerServer

REPO = Path(__file__).resolve().parents[1]
"""The project checkout: put on PYTHONPATH of the subprocesses, so they import it."""


class BuiltinServer(PeerServer):
    """``python -m gophermirror serve ROOT --quiet`` on 127.0.0.1, stopped like a peer.

    ``with BuiltinServer(root) as server: server.fetch(b"/")``.  It runs in
    its own session with cwd ``/`` (so no ``mirror.toml`` is read) and is
    stopped by its process group (``PeerServer.stop``).
    """

    name = "gophermirror"

    def command(self) -> list[str]:
        path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
        return [
            "env",
            f"PYTHONPATH={path}",
            sys.executable,
            "-m",
            "gophermirror",
            "serve",
            str(self.root),
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--quiet",
        ]


GOPHERNICUS_LINE: Final = 1023
"""Bytes gophernicus reads per ``fgets`` (its 1024-byte buffer, less the NUL)."""

GOPHERNICUS_FILETYPES: Final = """\
0 txt pl py sh tcl c cpp h log conf php php3
1 map menu
4 hqx
5 Z gz tgz tar zip bz2 rar sea
7 q qry
9 iso so o rtf ttf bin
c ics ical
g gif
h html htm xhtml css swf rdf rss xml
I jpg jpeg png bmp svg tif tiff ico xbm xpm pcx
M mbox
d pdf ps doc ppt xls xlsx docx pptx
s mp3 wav mid wma flac ogg aiff aac
; avi mp4 mpg mov qt asf mpv m4v webm ogv
"""
"""gophernicus 3.1.1's ``src/filetypes.conf``: a type, then the extensions it is given to."""

EXTENSION_TYPES: Final = {
    ext.lower(): line[0] for line in GOPHERNICUS_FILETYPES.splitlines() for ext in line.split()[1:]
}
"""Extension (lower case; gophernicus compares without case) -> gopher type."""

GOPHERNICUS_TEXT_TYPES: Final = frozenset("0M")
"""Types gophernicus sends line by line (``send_text_file``); every other is sent as is."""


def gophernicus_sends_as_text(path: bytes, data: bytes) -> bool:
    """Whether default gophernicus sends the file at ``path`` as text (types 0 and M).

    Its rule (``gopher_filetype``, docs/servers.md section 3): the suffix after
    the last ``.`` of the path (the whole path, directories included) in its
    extension table; otherwise it sniffs the first 1023 bytes: image, HTML,
    PDF and gzip magic or any NUL mean binary, mail headers mean ``M``, and
    anything else is the default type ``0``.
    """
    dot = path.rfind(b".")
    if dot >= 0:
        item_type = EXTENSION_TYPES.get(path[dot + 1 :].decode("latin-1").lower())
        if item_type is not None:
            return item_type in GOPHERNICUS_TEXT_TYPES
    head = data[:GOPHERNICUS_LINE]
    text = head.split(b"\0", 1)[0]  # it runs str* functions on the buffer
    if text.startswith((b"GIF89a", b"GIF87a", b"\xff\xd8\xff\xe0", b"\x89PNG")):
        return False
    if (b"\nFrom: " in text and b"\nSubject: " in text) or b"\nContent-Type: " in text:
        return True
    if text.startswith(b"<") and (b"<html" in text or b"<HTML" in text):
        return False
    if text.startswith((b"%PDF-", b"%!", b"\x1f\x9d\x90", b"\x1f\x8b\x08")):
        return False
    return b"\0" not in head


def gophernicus_text(data: bytes) -> bytes:
    """What gophernicus 3.1.1 (default options) sends for a text file holding ``data``.

    Its ``send_text_file``: ``fgets`` reads at most 1023 bytes up to and with
    a LF; text after a NUL in that piece is lost (``strlen``); the piece is
    re-encoded to UTF-8 (``_gophernicus_utf8``); ``chomp`` cuts it at its
    last LF and then at its last CR; the rest goes out with CRLF.  So: LF
    becomes CRLF, a final CRLF is added, latin-1 becomes UTF-8, lines over
    1023 bytes are split, and text after a lone CR or a NUL is lost.
    """
    out: list[bytes] = []
    pos, size = 0, len(data)
    while pos < size:
        newline = data.find(b"\n", pos, pos + GOPHERNICUS_LINE)
        end = newline + 1 if newline >= 0 else min(pos + GOPHERNICUS_LINE, size)
        line = _gophernicus_utf8(data[pos:end].split(b"\0", 1)[0])
        pos = end
        for ending in (b"\n", b"\r"):
            cut = line.rfind(ending)
            if cut >= 0:
                line = line[:cut]
        out.append(line + b"\r\n")
    return b"".join(out)


def _gophernicus_utf8(data: bytes) -> bytes:
    """gophernicus's ``strniconv`` to UTF-8 into a 1024-byte buffer, step for step.

    A byte >= 0x80 followed by a continuation byte starts a UTF-8 sequence
    (its length from the lead byte, the next bytes taken blindly); any other
    is a latin-1 character.  Each character is written as UTF-8 while the
    buffer has room; a character that does not fit is dropped, and input
    stops when the buffer is full.
    """
    out = bytearray()
    room, i, size = 1024, 0, len(data)
    while True:
        room -= 1
        if room == 0 or i >= size:
            return bytes(out)
        c = data[i]
        i += 1
        if c < 0x80:
            out.append(c)
            continue
        follows = size - i
        extra = 0
        if follows and data[i] & 0xC0 == 0x80:
            if c & 0xF8 == 0xF0 and follows >= 3:
                c, extra = c & 0x07, 3
            elif c & 0xF0 == 0xE0 and follows >= 2:
                c, extra = c & 0x0F, 2
            elif c & 0xE0 == 0xC0:
                c, extra = c & 0x1F, 1
            for _ in range(extra):
                c = (c << 6) | (data[i] & 0x3F)
                i += 1
        if c < 0x800 and room > 2:
            out += bytes((0xC0 | c >> 6, 0x80 | c & 0x3F))
            room -= 1
        elif c < 0x10000 and room > 3:
            out += bytes((0xE0 | c >> 12, 0x80 | (c >> 6) & 0x3F, 0x80 | c & 0x3F))
            room -= 2
        elif c < 0x110000 and room > 4:
            out += bytes(
                (0xF0 | c >> 18, 0x80 | (c >> 12) & 0x3F, 0x80 | (c >> 6) & 0x3F, 0x80 | c & 0x3F)
            )
            room -= 3
