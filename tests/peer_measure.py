"""Re-run the measurements behind docs/servers.md against the real peers.

Owns: a throwaway hole of small gophermaps and awkward file names, and a
printout (``cat -A`` style) of what gophernicus, pygopherd and pituophis send
back for each request.  Not a test: run it by hand and compare with the doc:

    .venv/bin/python -m tests.peer_measure > /tmp/measure.txt

Must not touch anything but the scratch root it makes (removed at the end).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from pathlib import Path

from tests.peers import (
    Gophernicus,
    PeerServer,
    PituophisServer,
    Pygopherd,
    make_world_readable,
    peer_root_dir,
)

MAX_LINES = 40


def cat_a(data: bytes, max_lines: int = MAX_LINES) -> str:
    """``cat -A`` rendering: ^I for tab, ^M for CR, $ at LF, M- for high bytes."""
    out: list[str] = []
    for byte in data:
        prefix = ""
        if byte >= 0x80:
            prefix, byte = "M-", byte - 0x80
        if byte == 0x0A and not prefix:
            out.append("$\n")
        elif byte < 0x20:
            out.append(prefix + "^" + chr(byte + 0x40))
        elif byte == 0x7F:
            out.append(prefix + "^?")
        else:
            out.append(prefix + chr(byte))
    lines = "".join(out).split("\n")
    if len(lines) > max_lines:
        lines = [*lines[:max_lines], f"... ({len(lines) - max_lines} more lines)"]
    return "\n".join(lines)


def write_map(path: Path, text: bytes) -> None:
    path.mkdir(parents=True, exist_ok=True)
    (path / "gophermap").write_bytes(text)


def build(root: Path) -> None:
    """The measurement hole."""
    (root / "t").mkdir()
    (root / "t" / "a.txt").write_bytes(b"alpha\n")
    (root / "t" / "sub").mkdir()
    (root / "t" / "sub" / "b.txt").write_bytes(b"beta\n")
    # m1: the general map
    write_map(
        root / "m1",
        b"plain info line without tabs\n"
        b"   leading spaces info\n"
        b"itab info\tsel\thost.example\t1\n"
        b"0full four fields\t/t/a.txt\tfar.example\t70\n"
        b"0host and port omitted\t/t/a.txt\n"
        b"0port omitted\t/t/a.txt\tfar.example\n"
        b"0empty host\t/t/a.txt\t\t70\n"
        b"0relative selector\ta.txt\n"
        b"1relative dir\tsub\n"
        b"0dotdot selector\t../t/a.txt\n"
        b"0absolute selector\t/t/a.txt\n"
        b"0no selector field\n"
        b"0empty selector\t\n"
        b"0fifth field plus\t/t/a.txt\tfar.example\t70\t+\n"
        b"0fifth field local\t/t/a.txt\n"
        b"0six fields\t/t/a.txt\tfar.example\t70\t+\textra\n"
        b"3an error line\t\terror.host\t1\n"
        b"hweb link\tURL:https://example.org/\n"
        b"7search item\t/search\n"
        b"\n"
        b"0after an empty line\t/t/a.txt\n"
        b"!a title line\n"
        b"# a comment line\n"
        b"0trailing spaces  \t/t/a.txt  \n"
        b"0a selector with spaces\t/t/a b.txt\n",
    )
    # m7: a line that starts with a tab (no type, no display)
    write_map(root / "m7", b"before\n\tonly tab line\nafter\n")
    (root / "m1" / "a.txt").write_bytes(b"m1 alpha\n")
    (root / "m1" / "sub").mkdir()
    # m2: a lone dot stops the map?
    write_map(root / "m2", b"before the dot\n.\nafter the dot\n")
    # m3: a star
    write_map(root / "m3", b"before the star\n*\nafter the star\n")
    (root / "m3" / "listed.txt").write_bytes(b"x\n")
    # m4: CRLF line endings in the map file
    write_map(root / "m4", b"info with crlf\r\n0link crlf\t/t/a.txt\r\n1dir crlf\tsub\r\n")
    # m5: latin-1 and utf-8 info lines, a long one
    write_map(
        root / "m5",
        "utf-8 info caf\u00e9\n".encode()
        + "latin-1 info caf\u00e9\n".encode("latin-1")
        + b"L" * 100
        + b"\n0long display "
        + b"D" * 100
        + b"\t/t/a.txt\n",
    )
    # m6: no map at all -> listing; nested map in a subdir
    (root / "m6" / "inner").mkdir(parents=True)
    (root / "m6" / "file.txt").write_bytes(b"file\n")
    (root / "m6" / "inner" / "gophermap").write_bytes(b"inner map info\n")
    # selectors
    s = root / "s"
    s.mkdir()
    for name in (
        "a%20b",
        "a b",
        "x=y",
        "~tilde",
        "c:d",
        "UPPER.TXT",
        ".x",
        "q?r",
        "semi;colon",
        "hash#1",
        "caf\u00e9.txt",
        "plus+sign",
        "text-noext",
        "bin-noext",
    ):
        (s / name).write_bytes(f"content of {name}\n".encode())
    (s / "bin-noext").write_bytes(b"abc\x00def\n")
    (s / ".gophermirror").mkdir()
    (s / ".gophermirror" / "state.txt").write_bytes(b"hidden state\n")
    # text treatment
    x = root / "x"
    x.mkdir()
    (x / "lf.txt").write_bytes(b"one\ntwo\n")
    (x / "crlf.txt").write_bytes(b"one\r\ntwo\r\n")
    (x / "nonl.txt").write_bytes(b"one\ntwo")
    (x / "latin1.txt").write_bytes("caf\u00e9\n".encode("latin-1"))
    (x / "utf8.txt").write_bytes("caf\u00e9 \u2019\n".encode())
    (x / "long.txt").write_bytes(b"A" * 1500 + b"\n")
    (x / "midcr.txt").write_bytes(b"a\rb\n")
    (x / "dot.txt").write_bytes(b".\n..\n")
    (x / "nul.txt").write_bytes(b"a\x00b\n")
    (x / "text.bin").write_bytes(b"plain text in a .bin\n")
    (x / "article").write_bytes(b"no extension\nsecond")
    (x / "page.html").write_bytes(b"<html>\nhi\n</html>\n")
    (x / "x.map").write_bytes(b"not a map\n")
    (x / "x.gophermap").write_bytes(b"inline map info\n")
    make_world_readable(root)


REQUESTS: list[bytes] = [
    b"/m1",
    b"/m1/",
    b"/m2",
    b"/m3",
    b"/m4",
    b"/m5",
    b"/m6",
    b"/m6/inner",
    b"/m7",
    b"/s",
    b"/s/a%20b",
    b"/s/a b",
    b"/s/a%2520b",
    b"/s/x=y",
    b"/s/~tilde",
    b"/s/c:d",
    b"/s/UPPER.TXT",
    b"/s/upper.txt",
    b"/s/.x",
    b"/s/.gophermirror/state.txt",
    b"/s/.gophermirror",
    b"/s/q?r",
    b"/s/q%3Fr",
    b"/s/semi;colon",
    b"/s/hash#1",
    b"/s/hash%231",
    b"/s/plus+sign",
    "/s/caf\u00e9.txt".encode(),
    b"/s/caf%C3%A9.txt",
    b"/s/caf#303#251.txt",
    b"/s/text-noext",
    b"/s/bin-noext",
    b"/x",
    b"/x/lf.txt",
    b"/x/crlf.txt",
    b"/x/nonl.txt",
    b"/x/latin1.txt",
    b"/x/utf8.txt",
    b"/x/long.txt",
    b"/x/midcr.txt",
    b"/x/dot.txt",
    b"/x/nul.txt",
    b"/x/text.bin",
    b"/x/article",
    b"/x/page.html",
    b"/x/x.map",
    b"/x/x.gophermap",
    b"/t/a.txt/",
    b"t/a.txt",
    b"//t//a.txt",
    b"/t/./a.txt",
    b"/t/sub/../a.txt",
    b"",
    b"/nope",
    b"/nope/",
    b"/nope.txt",
    b"/nope.png",
    b"/nope.html",
    b"/s/nope",
    b"URL:https://example.org/",
]


def run(server: PeerServer, requests: Iterable[bytes]) -> None:
    print(f"\n################ {server.name}  {' '.join(server.command())}")
    for selector in requests:
        try:
            reply = server.fetch(selector, timeout=10)
        except OSError as e:
            print(f"\n=== {selector!r}: {type(e).__name__}: {e}")
            continue
        print(f"\n=== {selector!r} ({len(reply)} bytes)")
        print(cat_a(reply))


def main() -> None:
    root = peer_root_dir("measure-")
    try:
        build(root)
        variants: list[PeerServer] = [
            Gophernicus(root),
            Gophernicus(root, extra_args=["-nf", "-nh", "-nl", "-nd"]),
            Gophernicus(root, extra_args=["-no", "-nc"]),
            Gophernicus(root, extra_args=["-t", "9", "-e", "txt=9"]),
            Pygopherd(root),
            PituophisServer(root),
        ]
        for server in variants:
            with server:
                requests = REQUESTS
                if isinstance(server, Gophernicus) and server.extra_args:
                    requests = [r for r in REQUESTS if r.startswith((b"/x", b"/m1", b"/m6"))]
                run(server, requests)
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
