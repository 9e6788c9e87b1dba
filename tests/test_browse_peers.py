"""Browsing a mirror with real clients: the built-in server, gophernicus and pygopherd (issue 4).

The origin is the fixture hole with gophermaps (info lines, links to another
host, a ``URL:`` link, a search item, a cycle back to the top) plus two files
of awkward text lines, served by pygopherd, which sends files byte for byte.
``gophermirror mirror`` copies it into a root readable by ``nobody``.  That
root is then served five ways:

- ``builtin``: ``gophermirror serve`` (the origin's selectors and the path form);
- ``gophernicus``: default options, the maps ``mirror`` wrote;
- ``gophernicus-export``: a copy after ``export --format gophernicus``, run with
  the options the export report advises (``-nf -nx -nc -t 9 -e txt=9``);
- ``pygopherd``: default settings, the maps ``mirror`` wrote;
- ``pygopherd-export``: a copy after ``export --format pygopherd``, with the
  handler list the export report advises.

Each is browsed from its root menu with curl and with ``pituophis.get``:
every mirrored menu must list the origin menu's items (type and display),
local links must point at the mirror and resolve there, the rest must be
unchanged, and every item must equal the origin's bytes, or, on default
gophernicus, exactly what ``gophernicus_text`` predicts.  lynx must render
every menu with its links, and sacc, driven in tmux, must open an article
from the mirror.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import attrs
import pytest

from gophermirror.protocol import (
    INFO,
    MENU,
    NON_FETCHABLE_TYPES,
    MenuItem,
    MenuLine,
    format_menu,
    parse_menu,
    parse_url,
    percent_encode,
    split_terminator,
)
from tests.browse_helpers import REPO, BuiltinServer, gophernicus_sends_as_text, gophernicus_text
from tests.peers import (
    FEED_DIR,
    HOST,
    Gophernicus,
    PeerServer,
    Pygopherd,
    build_fixture_hole,
    gopher_fetch,
    make_world_readable,
    peer_root_dir,
    require_peer,
)

pytestmark = pytest.mark.peer

HOST_FIELD = HOST.encode()
FEED = f"/{FEED_DIR}".encode()
MAX_MENUS = 30
"""No walk visits more menus than this (the hole has 5)."""

EDGE_FILES = {
    "long-lines.txt": b"A" * 1500
    + b"\n"
    + b"B" * 1023
    + b"\n"
    + b"C" * 1022
    + b"\r\nshort\n"
    + "\u00e9".encode() * 600  # UTF-8 line over 1023 bytes: split inside a character
    + b"\n"
    + b"\xe9" * 700  # latin-1 line whose UTF-8 form is over 1023 bytes
    + b"\nend",
    "cr-nul.txt": b"before a lone CR\rlost\nbefore a NUL\0lost too\nlast line\n",
}
"""Extra origin files (misc/) for gophernicus's long-line, lone-CR and NUL rules."""

Fetch = Callable[[bytes, bytes], bytes]
"""(item type, selector) -> every byte the server sent."""


# --------------------------------------------------------------------------
# The origin, the mirror, and the five ways to serve it
# --------------------------------------------------------------------------


@attrs.frozen
class Origin:
    """The origin hole while pygopherd serves it."""

    server: PeerServer
    """pygopherd on the hole."""
    items: dict[bytes, tuple[bytes, bytes]]
    """Every selector reachable from ``/`` on it -> (item type, bytes it sent)."""


@attrs.frozen
class Site:
    """One way of serving the mirror."""

    name: str
    """builtin, gophernicus, gophernicus-export, pygopherd or pygopherd-export."""
    server: PeerServer
    """The running server."""
    software: str
    """builtin, gophernicus or pygopherd: whose documented behaviour applies."""
    footer: bool
    """gophernicus appends its two footer lines to menus (no ``-nf``)."""
    rewrites_text: bool
    """gophernicus rewrites text files (no ``-nc -t 9 -e txt=9``)."""


@attrs.define
class Tally:
    """What one walk compared."""

    menus: int = 0
    """Menus fetched from the mirror and compared with the origin's."""
    links: int = 0
    """Non-info lines compared (type, display, where they point)."""
    infos: int = 0
    """Info lines compared."""
    local: int = 0
    """Links rewritten to point at the mirror (all resolved)."""
    kept: int = 0
    """Links left as the origin had them (other hosts, search, URL:)."""
    files: int = 0
    """Items other than menus fetched and compared byte for byte."""
    rewritten: int = 0
    """Of those, the ones gophernicus rewrites (compared with ``gophernicus_text``)."""
    visited: list[tuple[bytes, tuple[MenuItem, ...]]] = attrs.field(factory=list, repr=False)
    """(mirror selector, the mirror menu's items) for every menu fetched."""


def walk_origin(port: int) -> dict[bytes, tuple[bytes, bytes]]:
    """Every item reachable from ``/`` on the origin (links to itself only)."""
    items: dict[bytes, tuple[bytes, bytes]] = {}
    queue: deque[tuple[bytes, bytes]] = deque([(MENU, b"/")])
    while queue:
        assert len(items) < 200
        item_type, selector = queue.popleft()
        data = gopher_fetch(port, selector)
        items[selector] = (item_type, data)
        if item_type != MENU:
            continue
        for item in parse_menu(data).items:
            if is_origin_link(item, port) and item.selector not in items:
                assert item.selector is not None
                items[item.selector] = (item.type, b"")  # queued
                queue.append((item.type, item.selector))
    return items


def is_origin_link(item: MenuItem, origin_port: int) -> bool:
    """A link to an item of the origin that a mirror fetches."""
    return (
        item.type not in NON_FETCHABLE_TYPES
        and not item.is_url_link
        and item.host == HOST_FIELD
        and item.port == origin_port
    )


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[bytes]:
    """``python -m gophermirror ARGS`` (from ``cwd``, so no ``mirror.toml`` is read)."""
    path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
    return subprocess.run(
        [sys.executable, "-m", "gophermirror", *args],
        capture_output=True,
        timeout=60,
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": path},
    )


@pytest.fixture(scope="module")
def origin() -> Iterator[Origin]:
    """The fixture hole with gophermaps and ``EDGE_FILES``, served by pygopherd."""
    require_peer("pygopherd")
    root = peer_root_dir("browse-hole-")
    try:
        build_fixture_hole(root, gophermaps=True)
        for name, data in EDGE_FILES.items():
            (root / "misc" / name).write_bytes(data)
        make_world_readable(root)
        with Pygopherd(root) as server:
            yield Origin(server, walk_origin(server.port))
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def mirror_root(origin: Origin) -> Iterator[Path]:
    """The origin mirrored with ``gophermirror mirror ... --quiet``, readable by nobody."""
    base = peer_root_dir("browse-mirror-")
    try:
        root = base / "m"
        done = run_cli(
            "mirror",
            origin.server.url("/", "1"),
            "--root",
            str(root),
            "--delay",
            "0",
            "--quiet",
            "--json",
            cwd=base,
        )
        assert done.returncode == 0, done.stderr.decode()
        report = json.loads(done.stdout)
        assert report["items"]["new"] == len(origin.items)
        assert report["items"]["failed"] == 0 and report["errors"] == []
        make_world_readable(base)
        yield root
    finally:
        shutil.rmtree(base, ignore_errors=True)


@contextmanager
def exported_copy(mirror: Path, fmt: str) -> Iterator[tuple[Path, list[str]]]:
    """A copy of the mirror after ``export --format fmt``: (root, the report's advice).

    The copy is removed when the block ends.
    """
    base = peer_root_dir(f"browse-{fmt}-")
    try:
        root = base / "m"
        shutil.copytree(mirror, root, symlinks=True)
        done = run_cli("export", str(root), "--format", fmt, "--json", cwd=base)
        assert done.returncode == 0, done.stderr.decode()
        advice: list[str] = json.loads(done.stdout)["advice"]
        make_world_readable(base)
        yield root, advice
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def builtin_site(mirror_root: Path) -> Iterator[Site]:
    """``gophermirror serve`` on the mirror."""
    with BuiltinServer(mirror_root) as server:
        yield Site("builtin", server, "builtin", footer=False, rewrites_text=False)


@pytest.fixture(scope="module")
def gophernicus_site(mirror_root: Path) -> Iterator[Site]:
    """gophernicus, default options, on the maps ``mirror`` wrote."""
    require_peer("gophernicus")
    with Gophernicus(mirror_root) as server:
        yield Site("gophernicus", server, "gophernicus", footer=True, rewrites_text=True)


@pytest.fixture(scope="module")
def gophernicus_export_site(mirror_root: Path) -> Iterator[Site]:
    """gophernicus on an exported copy, with the options the export report advises."""
    require_peer("gophernicus")
    with exported_copy(mirror_root, "gophernicus") as (root, advice):
        # The options the report advises: -nf -nx, then -nc -t 9 -e txt=9.
        options = [
            arg
            for line in advice
            for option in re.findall(r"(?<!\S)(-n[a-z]|-[te] \S+)", line)
            for arg in option.split()
        ]
        assert {"-nf", "-nx", "-nc", "txt=9"} <= set(options), advice
        with Gophernicus(root, extra_args=options) as server:
            yield Site("gophernicus-export", server, "gophernicus", False, rewrites_text=False)


@pytest.fixture(scope="module")
def pygopherd_site(mirror_root: Path) -> Iterator[Site]:
    """pygopherd, default settings, on the maps ``mirror`` wrote."""
    with Pygopherd(mirror_root) as server:
        yield Site("pygopherd", server, "pygopherd", footer=False, rewrites_text=False)


@pytest.fixture(scope="module")
def pygopherd_export_site(mirror_root: Path) -> Iterator[Site]:
    """pygopherd on an exported copy, with the handler list the export report advises."""
    with exported_copy(mirror_root, "pygopherd") as (root, advice):
        handlers = next(m for line in advice if (m := re.search(r"handlers = (\[.*?\])", line)))
        settings = {"handlers": handlers.group(1)}
        with Pygopherd(root, settings=settings) as server:
            yield Site("pygopherd-export", server, "pygopherd", False, rewrites_text=False)


SITES = ["builtin", "gophernicus", "gophernicus-export", "pygopherd", "pygopherd-export"]


@pytest.fixture(scope="module", params=SITES)
def site(request: pytest.FixtureRequest) -> Site:
    found: Site = request.getfixturevalue(f"{request.param.replace('-', '_')}_site")
    return found


# --------------------------------------------------------------------------
# Clients
# --------------------------------------------------------------------------


def curl_fetch(port: int) -> Fetch:
    """Fetch with ``curl -s gopher://127.0.0.1:PORT/<type><selector>``."""

    def fetch(item_type: bytes, selector: bytes) -> bytes:
        url = f"gopher://{HOST}:{port}/{item_type.decode()}{percent_encode(selector)}"
        done = subprocess.run(
            ["curl", "-s", "-S", "--max-time", "10", url], capture_output=True, timeout=20
        )
        assert done.returncode == 0, (url, done.stderr)
        return done.stdout

    return fetch


def pituophis_fetch(port: int) -> Fetch:
    """Fetch with ``pituophis.get(host, port=PORT, path=SELECTOR).binary``."""
    import pituophis  # type: ignore[import-untyped,unused-ignore]

    def fetch(item_type: bytes, selector: bytes) -> bytes:
        del item_type  # not sent
        data: bytes = pituophis.get(HOST, port=port, path=selector.decode("utf-8")).binary
        return data

    return fetch


CLIENTS: dict[str, Callable[[int], Fetch]] = {"curl": curl_fetch, "pituophis": pituophis_fetch}


def client_for(name: str, port: int) -> Fetch:
    require_peer(name)
    return CLIENTS[name](port)


# --------------------------------------------------------------------------
# Comparing a mirrored menu with the origin's
# --------------------------------------------------------------------------


def is_footer(items: list[MenuItem]) -> bool:
    """The last two lines are gophernicus's footer (docs/servers.md, section 1)."""
    return (
        len(items) >= 2
        and [i.type for i in items[-2:]] == [INFO, INFO]
        and bool(re.fullmatch(rb"_+", items[-2].display))
        and b"Gophered by Gophernicus/" in items[-1].display
    )


def mirror_menu(site: Site, reply: bytes) -> list[MenuItem]:
    """The items of a mirror's menu, its server's own additions taken off and checked."""
    body, terminator = split_terminator(reply)
    if site.software == "gophernicus":
        assert terminator == b".\r\n"
    elif site.software == "pygopherd":
        assert terminator == b""
    menu = parse_menu(body)
    assert not menu.problems, menu.problems
    items = list(menu.items)
    assert is_footer(items) == site.footer, items[-2:]
    return items[:-2] if site.footer else items


def expected_builtin_menu(origin_reply: bytes, origin_port: int, port: int) -> bytes:
    """The origin's menu bytes with the host and port of links to mirrored items changed."""
    body, terminator = split_terminator(origin_reply)
    lines: list[MenuLine] = []
    for line in parse_menu(body).lines:
        if isinstance(line, MenuItem) and is_origin_link(line, origin_port):
            line = line.replace(host=HOST_FIELD, port_raw=str(port).encode())
        lines.append(line)
    return format_menu(lines) + terminator


def check_info(site: Site, got: MenuItem, want: MenuItem) -> None:
    """An info line: its text is kept; pygopherd makes its selector relative (documented)."""
    assert got.display == want.display
    if site.software == "pygopherd":
        assert (got.host, got.port_raw) == (want.host, want.port_raw)
        assert got.selector is not None and want.selector is not None
        assert got.selector == want.selector or got.selector.endswith(b"/" + want.selector)
    else:
        assert got == want


def check_local_link(site: Site, got: MenuItem, want: MenuItem) -> None:
    """A link to a mirrored item points at the mirror, with each server's own extra field."""
    assert (got.host, got.port) == (HOST_FIELD, site.server.port), got
    if site.software == "builtin":
        assert got.selector == want.selector and got.extra == want.extra
    elif site.software == "gophernicus":
        assert got.extra == ()
    else:
        assert got.extra == (b"+",)


def expected_item(site: Site, selector: bytes, origin_bytes: bytes) -> tuple[bytes, bool]:
    """What the mirror must send for an item: (bytes, whether gophernicus rewrote them)."""
    if site.rewrites_text and gophernicus_sends_as_text(selector, origin_bytes):
        return gophernicus_text(origin_bytes), True
    return origin_bytes, False


def walk_mirror(site: Site, origin: Origin, fetch: Fetch) -> Tally:
    """Walk the mirror from its root menu next to the origin, comparing as it goes."""
    tally = Tally()
    origin_port = origin.server.port
    roots = [
        item
        for item in mirror_menu(site, fetch(MENU, b""))
        if item.type == MENU and item.display == f"{HOST}:{origin_port} /".encode()
    ]
    assert len(roots) == 1, "the root menu lists the mirrored hole once"
    assert (roots[0].host, roots[0].port) == (HOST_FIELD, site.server.port)
    assert roots[0].selector is not None
    queue = deque([(b"/", roots[0].selector)])
    menus_seen = {b"/"}
    files_seen: set[bytes] = set()
    while queue:
        assert tally.menus < MAX_MENUS
        origin_selector, selector = queue.popleft()
        reply = fetch(MENU, selector)
        origin_reply = origin.items[origin_selector][1]
        if site.software == "builtin":
            assert reply == expected_builtin_menu(origin_reply, origin_port, site.server.port)
        got_items = mirror_menu(site, reply)
        want_items = parse_menu(split_terminator(origin_reply)[0]).items
        tally.menus += 1
        tally.visited.append((selector, tuple(got_items)))
        assert [(i.type, i.display) for i in got_items] == [
            (i.type, i.display) for i in want_items
        ], selector
        for got, want in zip(got_items, want_items, strict=True):
            if want.type == INFO:
                check_info(site, got, want)
                tally.infos += 1
                continue
            tally.links += 1
            if not is_origin_link(want, origin_port):
                assert got == want.replace(eol=got.eol), got  # other hosts, search, URL:
                tally.kept += 1
                continue
            check_local_link(site, got, want)
            tally.local += 1
            assert want.selector is not None and got.selector is not None
            if want.type == MENU:
                if want.selector not in menus_seen:
                    menus_seen.add(want.selector)
                    queue.append((want.selector, got.selector))
                continue
            if got.selector in files_seen:
                continue
            files_seen.add(got.selector)
            expected, rewritten = expected_item(site, got.selector, origin.items[want.selector][1])
            assert fetch(want.type, got.selector) == expected, got.selector
            tally.files += 1
            tally.rewritten += rewritten
    return tally


# --------------------------------------------------------------------------
# The tests
# --------------------------------------------------------------------------


def test_gophernicus_text_model_matches_the_documented_rows() -> None:
    """The model gives the rows of docs/servers.md, section 3 (default options)."""
    assert gophernicus_text(b"one\ntwo\n") == b"one\r\ntwo\r\n"
    assert gophernicus_text(b"one\r\ntwo\r\n") == b"one\r\ntwo\r\n"
    assert gophernicus_text(b"one\ntwo") == b"one\r\ntwo\r\n"
    assert gophernicus_text(b"caf\xe9\n") == b"caf\xc3\xa9\r\n"
    assert gophernicus_text("café ’\n".encode()) == "café ’\r\n".encode()
    assert gophernicus_text(b"A" * 1500 + b"\n") == b"A" * 1023 + b"\r\n" + b"A" * 477 + b"\r\n"
    assert gophernicus_text(b"a\rb\n") == b"a\r\n"
    assert gophernicus_text(b"a\0b\n") == b"a\r\n"
    assert gophernicus_text(b".\n..\n") == b".\r\n..\r\n"
    assert gophernicus_sends_as_text(b"/h_70/a/4800", b"no extension\n")
    assert not gophernicus_sends_as_text(b"/h_70/a/bin-noext", b"a\0b")
    assert not gophernicus_sends_as_text(b"/h_70/text.bin", b"text\n")
    assert not gophernicus_sends_as_text(b"/h_70/page.HTML", b"<p>\n")
    assert gophernicus_sends_as_text(b"/h_70/x.TXT", b"\x89PNG")


def test_the_mirror_holds_the_whole_origin(origin: Origin, mirror_root: Path) -> None:
    """The walk below starts from a complete mirror (5 menus and every file)."""
    types = [t for t, _data in origin.items.values()]
    assert types.count(MENU) == 5
    assert len(types) == 5 + 30 + 8 + len(EDGE_FILES)
    assert (mirror_root / "gophermap").is_file()


@pytest.mark.parametrize("client", ["curl", "pituophis"])
def test_browse_the_mirror(site: Site, origin: Origin, client: str) -> None:
    """From the mirror's root menu, every menu, link and item matches the origin's."""
    tally = walk_mirror(site, origin, client_for(client, site.server.port))
    files = len(origin.items) - 5
    rewritten = files - 2 if site.rewrites_text else 0  # all but pixel.png and random.bin
    assert (tally.menus, tally.files, tally.rewritten) == (5, files, rewritten)
    assert tally.kept == 4  # search, URL:, two links to other.example
    print(f"\n{site.name} {client}: {tally}")  # the figures in docs/serving.md


def test_builtin_serves_every_origin_selector(builtin_site: Site, origin: Origin) -> None:
    """``curl gopher://mirror/1/feeds/news/eurasianet``: the origin's selectors work as they are."""
    fetch = client_for("curl", builtin_site.server.port)
    for selector, (item_type, data) in origin.items.items():
        got = fetch(item_type, selector)
        if item_type == MENU:
            data = expected_builtin_menu(data, origin.server.port, builtin_site.server.port)
        assert got == data, selector
    feed = fetch(MENU, FEED)
    assert feed.count(f"\t{HOST}\t{builtin_site.server.port}\t+\r\n".encode()) == 32


def lynx_dump(url: str, home: Path) -> str:
    """``lynx -dump`` of ``url``: the page as text, then its numbered references."""
    done = subprocess.run(
        ["lynx", "-dump", "-width=1000", "-display_charset=utf-8", "-assume_charset=utf-8", url],
        capture_output=True,
        timeout=20,
        env={**os.environ, "HOME": str(home), "TERM": "dumb"},
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.decode("utf-8")


def test_lynx_renders_every_menu(site: Site, origin: Origin, tmp_path: Path) -> None:
    """Each menu's lines appear in order as ``[n]display``, each reference is where it points.

    lynx writes a UTF-8 selector as ``%%`` in its reference list
    (``/misc/café.txt`` shows as ``caf%%.txt``) and spaces as they are, so
    references with a UTF-8 selector are only counted.
    """
    require_peer("lynx")
    port = site.server.port
    tally = walk_mirror(site, origin, lambda _t, selector: gopher_fetch(port, selector))
    references = mangled = 0
    for selector, items in tally.visited:
        dump = lynx_dump(f"gopher://{HOST}:{port}/1{percent_encode(selector)}", tmp_path)
        text, _, reflist = dump.partition("\nReferences\n")
        lines = [line.strip() for line in text.splitlines()]
        urls = dict(re.findall(r"^\s*(\d+)\. (\S.*)$", reflist, re.M))
        links = [item for item in items if item.type != INFO]
        for n, item in enumerate(links, 1):
            assert any(line.endswith(f"[{n}]{item.text()}") for line in lines), (selector, n)
            assert item.selector is not None and item.port is not None
            url = urls[str(n)]
            if not item.selector.isascii():
                assert "%%" in url
                mangled += 1
                continue
            target = parse_url(url.replace(" ", "%20"))  # lynx writes spaces as they are
            assert (target.host, target.port, target.item_type, target.selector) == (
                item.host.decode() if item.host else "",
                item.port,
                item.type,
                item.selector,
            ), url
            references += 1
        assert len(urls) == len(links)
        for item in items:
            if item.type == INFO and item.text().strip():
                assert item.text().strip() in lines, (selector, item)
    # Only the built-in server keeps the origin's UTF-8 selector; the others use the path form.
    assert references + mangled == tally.links and mangled == (site.software == "builtin")
    # An article opened from the feed menu shows its title.
    title, article = next(
        (i.text(), i.selector)
        for s, items in tally.visited
        for i in items
        if i.type == b"0" and s.endswith(FEED_DIR.encode())
    )
    assert article is not None
    dump = lynx_dump(f"gopher://{HOST}:{port}/0{percent_encode(article)}", tmp_path)
    assert f"{title} [1]" in dump.splitlines()


# --------------------------------------------------------------------------
# sacc in tmux
# --------------------------------------------------------------------------


@attrs.define
class Tmux:
    """A tmux server of its own (``-S socket``) running one program in a pane."""

    socket: Path
    """The server's socket, in a directory of this test."""
    env: dict[str, str]
    """Environment of the tmux server and so of the program."""

    def run(self, *args: str) -> str:
        done = subprocess.run(
            ["tmux", "-S", str(self.socket), "-f", "/dev/null", *args],
            capture_output=True,
            timeout=10,
            env=self.env,
        )
        assert done.returncode == 0, (args, done.stderr)
        return done.stdout.decode("utf-8", "replace")

    def screen(self) -> str:
        return self.run("capture-pane", "-p", "-t", "main")

    def wait_for(self, predicate: Callable[[str], bool], timeout: float = 10.0) -> str:
        """Poll the pane (every 0.1 s, at most ``timeout`` s) until ``predicate`` holds."""
        deadline = time.monotonic() + timeout
        while True:
            screen = self.screen()
            if predicate(screen):
                return screen
            if time.monotonic() > deadline:
                raise AssertionError(f"not on screen after {timeout}s:\n{screen}")
            time.sleep(0.1)

    def kill(self) -> None:
        """Stop the tmux server (and sacc with it); remove the socket."""
        subprocess.run(
            ["tmux", "-S", str(self.socket), "kill-server"],
            capture_output=True,
            timeout=10,
            env=self.env,
        )
        self.socket.unlink(missing_ok=True)


def test_sacc_in_tmux_opens_an_article_from_the_mirror(
    builtin_site: Site, origin: Origin, tmp_path: Path
) -> None:
    """sacc opens the mirror's feed menu, finds an article's title, opens it: the title shows."""
    require_peer("tmux")
    require_peer("sacc")
    port = builtin_site.server.port
    feed = parse_menu(origin.items[FEED][1]).items
    titles = [i.text() for i in feed if i.type == b"0"]
    # An ASCII title, not the first one, that no other line contains.
    title = next((t for t in titles[1:] if t.isascii() and sum(t in u for u in titles) == 1), "")
    assert title, titles
    selector = next(i.selector for i in feed if i.text() == title)
    assert selector is not None
    pager = "less" if shutil.which("less") else "more"
    sockets = Path(tempfile.mkdtemp(prefix="gophermirror-tmux-"))  # short: a socket path
    tmux = Tmux(
        sockets / "browse",
        {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(tmp_path),
            "LANG": "C.UTF-8",
            "PAGER": pager,
        },
    )
    try:
        # 24 rows: the article is longer than the pane, so the pager waits.
        tmux.run(
            "new-session",
            "-d",
            "-s",
            "main",
            "-x",
            "200",
            "-y",
            "24",
            f"sacc gopher://{HOST}:{port}/1{FEED.decode()}",
        )
        tmux.wait_for(lambda s: f"{HOST}:{port}/1{FEED.decode()}" in s and titles[0] in s)
        tmux.run("send-keys", "-t", "main", "/")
        tmux.wait_for(lambda s: "Search for:" in s)
        tmux.run("send-keys", "-t", "main", "-l", title)
        tmux.run("send-keys", "-t", "main", "Enter", "u")  # u: show the highlighted item's URI
        item_url = f"gopher://{HOST}:{port}/0{selector.decode()}"
        tmux.wait_for(lambda s: item_url in s)
        tmux.run("send-keys", "-t", "main", "l")  # l: open it
        screen = tmux.wait_for(lambda s: f"{title} [1]" in s)
        assert "This story was originally published by" in screen
        assert titles[0] not in screen  # the menu is gone: the article is shown
    finally:
        tmux.kill()
        shutil.rmtree(sockets, ignore_errors=True)
