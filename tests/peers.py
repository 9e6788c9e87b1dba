"""Run real gopher servers (gophernicus, pygopherd, pituophis) on loopback for tests.

Owns: starting, ready-checking and stopping peer server subprocesses; the
world-readable scratch roots they serve; the fixture hole written to disk
(``build_fixture_hole``); a raw one-request socket client (``gopher_fetch``).
Must not touch: gophermirror's product code (it only imports
``gophermirror.article.sample_article`` when that exists), system services,
or any address other than 127.0.0.1.

Readable roots.  gophernicus serves only world-readable files, and both it and
pygopherd run as ``nobody``.  pytest's ``tmp_path`` lives under
``/tmp/pytest-of-root/`` which pytest creates 0700, so ``nobody`` cannot reach
it.  Rather than loosening pytest's directories, roots are made with
``peer_root_dir()`` under one dedicated directory, ``/tmp/gophermirror-peers``
(mode 0755; override with the env var ``GOPHERMIRROR_PEER_ROOTS``), and
``make_world_readable(root)`` sets every directory below to 0755 and every file
to 0644.  0644 matters: gophernicus *executes* a gophermap whose other-execute
bit is set.  The caller removes the root (``shutil.rmtree``) when done; the
fixtures in ``tests/peer_fixtures.py`` do.

Servers.  ``Gophernicus``, ``Pygopherd`` and ``PituophisServer`` are context
managers: ``with Gophernicus(root) as g: gopher_fetch(g.port, b"/")``.  Each
runs in its own session (process group); ``stop()`` signals the whole group,
waits for every member to be gone and for the port to refuse connections,
within bounded deadlines, and raises ``PeerError`` otherwise.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import ClassVar, Self

import attrs
import pytest

HOST = "127.0.0.1"
"""The only address a peer binds to and the host it writes into menus."""

GOPHERNICUS_BIN = "/usr/sbin/gophernicus"
PYGOPHERD_BIN = "/usr/sbin/pygopherd"
PYGOPHERD_CONF = "/etc/pygopherd/pygopherd.conf"
READY_TIMEOUT = 10.0
"""Seconds a server gets to accept its first connection."""
STOP_TIMEOUT = 5.0
"""Seconds a server's process group gets to die after SIGTERM, then after SIGKILL."""

PEER_ROOTS_ENV = "GOPHERMIRROR_PEER_ROOTS"
DEFAULT_PEER_ROOTS = Path("/tmp/gophermirror-peers")


class PeerError(RuntimeError):
    """A peer server did not start, did not become ready, or did not stop."""


# --- ports, roots, permissions ---------------------------------------------


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (bind to 0, read, close)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        port: int = s.getsockname()[1]
        return port


def peer_roots_base() -> Path:
    """The world-readable directory under which every peer root is made."""
    base = Path(os.environ.get(PEER_ROOTS_ENV, str(DEFAULT_PEER_ROOTS)))
    base.mkdir(parents=True, exist_ok=True)
    base.chmod(0o755)
    return base


def peer_root_dir(prefix: str = "root-") -> Path:
    """A new empty directory (mode 0755) that ``nobody`` can read; the caller removes it."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=peer_roots_base()))
    path.chmod(0o755)
    return path


def make_world_readable(root: Path) -> None:
    """Directories under ``root`` (and itself) to 0755, files to 0644: never executable."""
    root.chmod(0o755)
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames:
            (Path(dirpath) / name).chmod(0o755)
        for name in filenames:
            path = Path(dirpath) / name
            if not path.is_symlink():
                path.chmod(0o644)


# --- availability -----------------------------------------------------------


def peer_available(name: str) -> bool:
    """Whether the peer ``name`` (gophernicus, pygopherd, pituophis, socat, curl...) is here."""
    if name == "pituophis":
        import importlib.util

        return importlib.util.find_spec("pituophis") is not None
    if name == "gophernicus":
        return os.access(GOPHERNICUS_BIN, os.X_OK) and shutil.which("socat") is not None
    if name == "pygopherd":
        return os.access(PYGOPHERD_BIN, os.X_OK) and Path(PYGOPHERD_CONF).is_file()
    return shutil.which(name) is not None


def require_peer(name: str) -> None:
    """Fail (when CI is set) or skip (otherwise) the calling test if ``name`` is missing."""
    if peer_available(name):
        return
    message = f"gopher peer {name!r} is not installed (apt-get install -y {name})"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


# --- a raw client ------------------------------------------------------------


def gopher_fetch(
    port: int, selector: bytes, *, host: str = HOST, timeout: float = 10.0, limit: int = 1 << 24
) -> bytes:
    """Send ``selector + CRLF`` and return every byte until the server closes.

    Raises ``TimeoutError`` if the whole exchange takes longer than ``timeout``
    and ``PeerError`` if the reply is larger than ``limit``.
    """
    deadline = time.monotonic() + timeout
    chunks: list[bytes] = []
    size = 0
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.sendall(selector + b"\r\n")
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(
                    f"gopher_fetch {selector!r} on port {port}: no EOF in {timeout}s"
                )
            s.settimeout(left)
            chunk = s.recv(65536)
            if not chunk:
                return b"".join(chunks)
            size += len(chunk)
            if size > limit:
                raise PeerError(f"gopher_fetch {selector!r}: reply larger than {limit} bytes")
            chunks.append(chunk)


def port_accepts(port: int, host: str = HOST) -> bool:
    """Whether a TCP connect to ``host:port`` succeeds right now."""
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


# --- process-group helpers ---------------------------------------------------


def group_members(pgid: int) -> list[int]:
    """PIDs whose process group is ``pgid`` (read from /proc), zombies excluded."""
    members: list[int] = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        # Fields after the ")" that ends the command name: state ppid pgrp ...
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) >= 3 and int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(entry))
    return members


def _wait_until(predicate: Callable[[], bool], timeout: float, step: float = 0.05) -> bool:
    """Poll ``predicate`` until true or ``timeout`` seconds pass; return its last value."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(step)


# --- servers -----------------------------------------------------------------


class PeerServer:
    """A gopher server subprocess serving ``root`` on 127.0.0.1:``port``.

    Subclasses say how to build the command line (``command()``); this class
    starts it in a new session, waits until the port accepts a connection, and
    stops the whole process group.  Use it as a context manager.
    """

    name: ClassVar[str] = "peer"

    def __init__(self, root: Path, port: int | None = None) -> None:
        self.root = Path(root).resolve()
        """The directory served."""
        self.port = port if port is not None else free_port()
        """The TCP port on 127.0.0.1."""
        self.host = HOST
        """The address bound, and the host the server writes into its menus."""
        self.state_dir: Path | None = None
        """Scratch directory (config, log, pidfile): made by ``start()``, removed by ``stop()``."""
        self.process: subprocess.Popen[bytes] | None = None
        """The server process (leader of its own process group) while it runs."""

    @property
    def log_path(self) -> Path:
        """The server's stdout and stderr (inside ``state_dir``; only while started)."""
        if self.state_dir is None:
            raise PeerError(f"{self.name} is not started")
        return self.state_dir / "server.log"

    # subclasses ----------------------------------------------------------
    def command(self) -> list[str]:
        raise NotImplementedError

    # lifecycle ---------------------------------------------------------------
    def start(self) -> Self:
        """Start the server and wait (at most ``READY_TIMEOUT`` s) until it accepts."""
        if self.process is not None:
            raise PeerError(f"{self.name} already started")
        if port_accepts(self.port):
            raise PeerError(f"{self.name}: port {self.port} is already in use")
        self.state_dir = Path(tempfile.mkdtemp(prefix=f"gophermirror-{self.name}-"))
        try:
            argv = self.command()
        except BaseException:
            self._cleanup_state()
            raise
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                cwd="/",
            )
        deadline = time.monotonic() + READY_TIMEOUT
        while not port_accepts(self.port):
            exited = self.process.poll() is not None
            if exited or time.monotonic() >= deadline:
                why = "exited at start" if exited else f"not ready in {READY_TIMEOUT}s"
                message = f"{self.name} {why}: {argv}\n{self.log()}"
                try:
                    self.stop()
                except PeerError as e:
                    message += f"\n{e}"
                raise PeerError(message)
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        """Kill the process group, reap it, check nothing is left and the port is closed."""
        process, self.process = self.process, None
        if process is None:
            return
        pgid = process.pid
        try:
            for sig in (signal.SIGTERM, signal.SIGKILL):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pgid, sig)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(timeout=STOP_TIMEOUT)
                if process.poll() is not None and _wait_until(
                    lambda: not group_members(pgid), STOP_TIMEOUT
                ):
                    break
            left = group_members(pgid)
            if process.poll() is None or left:
                raise PeerError(f"{self.name}: processes left after stop: {left or [pgid]}")
            if not _wait_until(lambda: not port_accepts(self.port), STOP_TIMEOUT):
                raise PeerError(f"{self.name}: port {self.port} still open after stop")
        finally:
            self._cleanup_state()

    def log(self) -> str:
        """What the server printed so far (for failure messages)."""
        try:
            return self.log_path.read_text(errors="replace")
        except (OSError, PeerError):
            return ""

    def _cleanup_state(self) -> None:
        state_dir, self.state_dir = self.state_dir, None
        if state_dir is not None:
            shutil.rmtree(state_dir, ignore_errors=True)

    def url(self, selector: str = "", item_type: str = "1") -> str:
        """``gopher://127.0.0.1:PORT/<type><selector>`` for curl or lynx."""
        return f"gopher://{self.host}:{self.port}/{item_type}{selector}"

    def fetch(self, selector: bytes, timeout: float = 10.0) -> bytes:
        """One raw request to this server (see ``gopher_fetch``)."""
        return gopher_fetch(self.port, selector, host=self.host, timeout=timeout)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.root} on {self.host}:{self.port}>"


class Gophernicus(PeerServer):
    """gophernicus 3.x behind socat (it is inetd-style and refuses root), as ``nobody``.

    ``extra_args`` are appended to gophernicus's options (e.g. ``["-nf"]`` to
    drop the menu footer, ``["-nc", "-no"]``); ``-nm`` is always passed so
    nothing survives in SysV shared memory.
    """

    name = "gophernicus"

    def __init__(
        self,
        root: Path,
        port: int | None = None,
        *,
        mapfile: str = "gophermap",
        extra_args: tuple[str, ...] | list[str] = (),
    ) -> None:
        super().__init__(root, port)
        self.mapfile = mapfile
        """Name of the gophermap file (``-g``)."""
        self.extra_args = tuple(extra_args)
        """Options added after the defaults."""

    def command(self) -> list[str]:
        for arg in (str(self.root), self.mapfile, *self.extra_args):
            if any(c in arg for c in "',!\"\\ :"):
                raise PeerError(f"gophernicus: argument {arg!r} cannot go through socat EXEC")
        inner = " ".join(
            [
                GOPHERNICUS_BIN,
                f"-h {self.host}",
                f"-p {self.port}",
                f"-r {self.root}",
                f"-g {self.mapfile}",
                "-nm",
                *self.extra_args,
            ]
        )
        return [
            "setpriv",
            "--reuid=nobody",
            "--regid=nogroup",
            "--clear-groups",
            "socat",
            f"TCP4-LISTEN:{self.port},bind={self.host},reuseaddr,fork,backlog=128",
            f"EXEC:'{inner}',nofork",
        ]


class Pygopherd(PeerServer):
    """pygopherd 3.x from a copy of /etc/pygopherd/pygopherd.conf, as ``nobody``.

    ``settings`` override more keys of the ``[pygopherd]`` section.  Logging
    goes to the log file (``logmethod = file``), not syslog.
    """

    name = "pygopherd"

    def __init__(
        self, root: Path, port: int | None = None, *, settings: dict[str, str] | None = None
    ) -> None:
        super().__init__(root, port)
        self.settings = dict(settings or {})
        """Extra ``[pygopherd]`` keys."""

    def write_conf(self) -> Path:
        """Write the config (the system one with our keys) into ``state_dir``; return its path."""
        import configparser

        conf_path = self.log_path.with_name("pygopherd.conf")
        pid_path = self.log_path.with_name("pygopherd.pid")

        parser = configparser.RawConfigParser()
        parser.optionxform = str  # type: ignore[assignment,method-assign]
        parser.read(PYGOPHERD_CONF)
        values = {
            "port": str(self.port),
            "interface": self.host,
            "servername": self.host,
            "usechroot": "no",
            "setuid": "nobody",
            "setgid": "nogroup",
            "root": str(self.root),
            "pidfile": str(pid_path),
            "detach": "no",
            **self.settings,
        }
        for key, value in values.items():
            parser.set("pygopherd", key, value)
        parser.set("logger", "logmethod", "file")
        with open(conf_path, "w") as f:
            parser.write(f)
        return conf_path

    def command(self) -> list[str]:
        return [PYGOPHERD_BIN, str(self.write_conf())]


PITUOPHIS_SCRIPT = r'''
import asyncio, sys
import pituophis

HOST = "127.0.0.1"

class LoopbackLoop(asyncio.SelectorEventLoop):
    """pituophis.serve() calls create_server("0.0.0.0", port): bind loopback instead."""
    async def create_server(self, factory, host=None, port=None, **kw):
        return await super().create_server(factory, HOST, port, **kw)

class LoopbackPolicy(asyncio.DefaultEventLoopPolicy):
    def new_event_loop(self):
        return LoopbackLoop()

asyncio.set_event_loop_policy(LoopbackPolicy())
root, port = sys.argv[1], int(sys.argv[2])
pituophis.serve(host=HOST, port=port, pub_dir=root.rstrip("/") + "/", debug=False)
'''
"""Run by ``PituophisServer``: the host is patched at the ``create_server`` call."""


class PituophisServer(PeerServer):
    """pituophis's asyncio server (PyPI), bound to 127.0.0.1 by a custom event loop.

    pituophis treats the first chunk it receives as the whole request, answers
    and closes: a client that writes the selector and the CRLF separately (curl
    does) may get a connection reset.  ``gopher_fetch`` sends both at once.
    """

    name = "pituophis"

    def command(self) -> list[str]:
        return [sys.executable, "-c", PITUOPHIS_SCRIPT, str(self.root), str(self.port)]


SERVERS: dict[str, type[PeerServer]] = {
    "gophernicus": Gophernicus,
    "pygopherd": Pygopherd,
    "pituophis": PituophisServer,
}
"""Peer name -> server class."""


# --- the fixture hole ------------------------------------------------------------

FEED_DIR = "feeds/news/eurasianet"
FIRST_ARTICLE = 4770
FEED_URL = "gopher://magical.fish/1/feeds/news/eurasianet/"

_FILLER = (
    "the ministry said on tuesday that talks with neighbouring states would resume "
    "after a pause of several months while officials in the capital weighed a new "
    "pipeline deal energy prices border crossings and the fate of local media outlets "
    "remained uncertain according to analysts who spoke on condition of anonymity"
)
_WORDS = _FILLER.split()
_PEOPLE = (
    "Aigerim Nurlanova",
    "Davit Beridze",
    "Farida Karimova",
    "Timur Ospanov",
    "Nino Kapanadze",
)


def _local_sample_article(n: int) -> bytes:
    """An article in the magical.fish feed layout, deterministic in ``n``, no final newline."""
    rng = random.Random(n)

    def sentence() -> str:
        words = [rng.choice(_WORDS) for _ in range(rng.randint(8, 20))]
        return " ".join(words).capitalize() + "."

    title = f"Article {n}: " + " ".join(rng.choice(_WORDS) for _ in range(6)).capitalize()
    authors = rng.sample(_PEOPLE, rng.randint(1, 2))
    slug = "-".join(title.lower().replace(":", "").split())
    paragraphs = ["\u201c" + sentence() + "\u201d " + sentence() for _ in range(rng.randint(3, 6))]
    lines = [
        "(C) EurasiaNet",
        "This story was originally published by EurasiaNet and is unaltered.",
        ". . . . . . . . . .",
        "",
        "",
        "",
        f"{title} [1]",
        "",
        repr(authors),
        "",
        f"Date: 2025-{rng.randint(1, 12):02d}",
        "",
    ]
    for paragraph in paragraphs:
        lines += [paragraph, ""]
    lines += [
        "[END]",
        "---",
        f"[1] Url: https://eurasianet.org/{slug}",
        "",
        "Published and (C) by EurasiaNet",
        "Content appears here under this condition or license: Creative Commons CC BY-ND 4.0.",
        "",
        "via Magical.Fish Gopher News Feeds:",
        FEED_URL,
    ]
    return "\n".join(lines).encode("utf-8")


def sample_article(n: int) -> bytes:
    """``gophermirror.article.sample_article(n)`` if it exists, else the local generator."""
    try:
        from gophermirror import article  # type: ignore[attr-defined,unused-ignore]
    except ImportError:
        return _local_sample_article(n)
    make = getattr(article, "sample_article", None)
    if make is None:
        return _local_sample_article(n)
    data = make(n)
    return data if isinstance(data, bytes) else str(data).encode("utf-8")


def tiny_png() -> bytes:
    """A valid 1x1 RGBA PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 6, 0, 0, 0)
    pixels = zlib.compress(b"\x00\xff\x00\x00\xff")
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


MISC_FILES: dict[str, tuple[str, bytes]] = {
    "dots.txt": (
        "0",
        b"a line before\n.\n..starts with two dots\n...three\n.. dot space\nlast line\n",
    ),
    "latin1.txt": (
        "0",
        "caf\u00e9 \u00a3 \u00b0 \u00bf\nsecond line \u00e9t\u00e9\n".encode("latin-1"),
    ),
    "crlf.txt": ("0", b"first line\r\nsecond line\r\nthird line\r\n"),
    "nonl.txt": ("0", b"no final newline here\nsecond and last line"),
    "random.bin": ("9", b"\x00" + random.Random(1436).randbytes(4095)),
    "pixel.png": ("I", tiny_png()),
    "file with spaces.txt": ("0", b"a file whose name has spaces\n"),
    "caf\u00e9.txt": ("0", "a file whose name is not ASCII: caf\u00e9\n".encode()),
}
"""misc/ files: name -> (gopher type, bytes)."""


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def _map_lines(lines: list[str]) -> bytes:
    return "".join(line + "\n" for line in lines).encode("utf-8")


@attrs.frozen
class HoleOnDisk:
    """A fixture hole written by ``build_fixture_hole``."""

    root: Path
    """The world-readable directory the servers serve."""
    items: dict[str, tuple[str, bytes]]
    """Absolute selector -> (gopher type, bytes on disk); menus map to ("1", map bytes or b"")."""


def build_fixture_hole(
    root: Path, n_articles: int = 30, *, gophermaps: bool = False
) -> dict[str, tuple[str, bytes]]:
    """Write a fixture hole under ``root`` and say what it holds.

    Layout: ``feeds/news/eurasianet/<n>`` for ``n_articles`` numbers from 4770
    (magical.fish article format, no final newline), and ``misc/`` with
    awkward files (lone-dot lines, latin-1, CRLF, no final newline, binary with
    NUL, a PNG, a name with spaces, a non-ASCII name).  Without ``gophermaps``
    every menu is the server's own directory listing.  With ``gophermaps``,
    ``/gophermap`` and ``/feeds/news/eurasianet/gophermap`` are written: info
    lines, links to another host, an ``h`` ``URL:`` link, a ``7`` search item,
    and links back to the parent and root (a cycle).

    Returns ``selector -> (type, bytes on disk)`` with absolute selectors
    (``/misc/dots.txt``).  Directories map to ``("1", gophermap bytes)``, or
    ``("1", b"")`` when the server lists them itself.  Permissions are set
    with ``make_world_readable``.
    """
    root = Path(root)
    items: dict[str, tuple[str, bytes]] = {}
    numbers = range(FIRST_ARTICLE, FIRST_ARTICLE + n_articles)
    for n in numbers:
        data = sample_article(n)
        _write(root / FEED_DIR / str(n), data)
        items[f"/{FEED_DIR}/{n}"] = ("0", data)
    for name, (item_type, data) in MISC_FILES.items():
        _write(root / "misc" / name, data)
        items[f"/misc/{name}"] = (item_type, data)
    for directory in ("", "/feeds", "/feeds/news", f"/{FEED_DIR}", "/misc"):
        items[directory + "/"] = ("1", b"")

    if gophermaps:
        root_map = _map_lines(
            [
                "Welcome to the gophermirror fixture hole.",
                "",
                "1News feeds\t/feeds",
                "1Eurasianet\t/feeds/news/eurasianet",
                "1Odd files\t/misc",
                "0Dots\t/misc/dots.txt",
                "7Search the hole\t/search",
                "hProject page\tURL:https://example.org/gophermirror",
                "1Another hole\t/\tother.example\t70",
                "0A file elsewhere\t/about.txt\tother.example\t7070",
            ]
        )
        _write(root / "gophermap", root_map)
        items["/"] = ("1", root_map)
        feed_lines = ["Eurasianet via the fixture hole", ""]
        feed_lines += [f"0{sample_title(n)}\t/{FEED_DIR}/{n}" for n in reversed(numbers)]
        feed_lines += ["", "1Up to news\t/feeds/news", "1Back to the top\t/"]
        feed_map = _map_lines(feed_lines)
        _write(root / FEED_DIR / "gophermap", feed_map)
        items[f"/{FEED_DIR}/"] = ("1", feed_map)

    make_world_readable(root)
    return items


def sample_title(n: int) -> str:
    """The title line of article ``n`` (without the `` [1]`` marker)."""
    for line in sample_article(n).decode("utf-8", errors="replace").split("\n"):
        if line.endswith(" [1]"):
            return line[: -len(" [1]")]
    return f"Article {n}"
