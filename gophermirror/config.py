"""The configuration file, ``mirror.toml``.

Owns: reading the TOML file into a frozen ``Config`` and saying exactly
where it is wrong (file, line, key).  Must not touch: the network, the
store.  The command line overrides what is read here (cli.py does that).
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import attrs

from .client import Limits
from .errors import BadURL, ConfigError
from .protocol import GopherURL, parse_url

DEFAULT_CONFIG: Final = "mirror.toml"


@attrs.frozen
class Politeness:
    """How hard the tool may press one server."""

    concurrency: int = 2
    """Connections at once to one host."""
    delay: float = 0.2
    """Least seconds between the starts of two requests to one host."""
    global_concurrency: int = 16
    """Connections at once across all hosts."""
    connect_timeout: float = 10.0
    """Seconds to connect."""
    idle_timeout: float = 30.0
    """Seconds a server may stay silent mid-reply."""
    total_timeout: float = 300.0
    """Seconds for one whole reply."""
    max_size: int = 64 << 20
    """Largest item accepted, in bytes."""
    robots: bool = True
    """Honour robots.txt (selector ``robots.txt``)."""
    retries: int = 1
    """Extra tries for an item that failed on the network."""

    def limits(self) -> Limits:
        """The per-request limits these settings imply."""
        return Limits(
            connect_timeout=self.connect_timeout,
            idle_timeout=self.idle_timeout,
            total_timeout=self.total_timeout,
            max_size=self.max_size,
        )


@attrs.frozen
class Feed:
    """One followed feed: a gopher menu whose items are articles."""

    name: str
    """Short name: letters, digits, ``-`` and ``_``; names ``atom/NAME.xml``."""
    url: GopherURL
    """The feed menu."""
    interval: float = 3600.0
    """Seconds between checks in ``feed watch``."""
    max_items: int | None = None
    """Keep at most this many articles in the listings (None: all)."""
    max_age_days: float | None = None
    """Drop articles first seen longer ago than this from listings (None: never)."""
    title: str | None = None
    """A display title; defaults to the name."""


@attrs.frozen
class MirrorSettings:
    """Defaults for ``gophermirror mirror``."""

    urls: tuple[GopherURL, ...] = ()
    """Start URLs when none are given on the command line."""
    depth: int | None = None
    """Menus deep to follow from a start URL (None: no limit)."""
    include: tuple[str, ...] = ()
    """Regular expressions a selector must match (any), if given."""
    exclude: tuple[str, ...] = ()
    """Regular expressions that exclude a selector."""
    follow_hosts: bool = False
    """Follow links to other hosts."""
    max_items: int = 1_000_000
    """Stop queueing after this many items (a trap guard)."""
    max_selector: int = 1024
    """Longest selector followed (a trap guard)."""


@attrs.frozen
class Config:
    """Everything ``mirror.toml`` says, with defaults filled in."""

    root: Path = Path("mirror")
    """The store."""
    politeness: Politeness = Politeness()
    mirror: MirrorSettings = MirrorSettings()
    feeds: tuple[Feed, ...] = ()
    advertise: tuple[str, int] | None = None
    """``host:port`` a public server of this mirror answers at: written into
    served menus (``serve``, ``export``) and the Atom links to mirrored copies."""
    source: str | None = None
    """The file it came from, if any."""

    def feed(self, name: str) -> Feed:
        """The feed called ``name``; ``ConfigError`` if there is none."""
        for feed in self.feeds:
            if feed.name == name:
                return feed
        known = ", ".join(f.name for f in self.feeds) or "none"
        raise ConfigError(f"no feed named {name!r} (known: {known})", self.source)


_NAME_RE: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
_SIZE_RE: Final = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMG]i?B?|B)?\s*$", re.I)
_DURATION_RE: Final = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)?\s*$", re.I)
_TOP_KEYS: Final = frozenset({"root", "advertise", "politeness", "mirror", "feed"})


def load_config(path: str | Path | None, *, required: bool = False) -> Config:
    """Read ``path`` (or ``./mirror.toml`` when ``path`` is None and it exists).

    Returns defaults when there is no file and none was asked for.
    """
    if path is None:
        candidate = Path(DEFAULT_CONFIG)
        if not candidate.is_file():
            return Config()
        path = candidate
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("config file not found", str(file)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config: {exc}", str(file)) from None
    config = parse_config(text, str(file))
    if not config.root.is_absolute():
        # A relative root is relative to the config file, not to the cwd.
        config = attrs.evolve(config, root=file.parent / config.root)
    return config


def parse_config(text: str, source: str = "<config>") -> Config:
    """Parse TOML text; every error names ``source``, the line and the key."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        match = re.search(r"line (\d+)", str(exc))
        line = int(match.group(1)) if match else None
        raise ConfigError(f"not valid TOML: {exc}", source, line) from None
    reader = _Reader(text, source)
    for key in data:
        if key not in _TOP_KEYS:
            raise reader.error(
                key, None, "unknown key (expected root, [politeness], [mirror], [[feed]])"
            )
    root = Path(reader.string(data, "root", None, "mirror"))
    pol = data.get("politeness", {})
    if not isinstance(pol, dict):
        raise reader.error("politeness", None, "must be a table: [politeness]")
    politeness = reader.politeness(pol)
    mir = data.get("mirror", {})
    if not isinstance(mir, dict):
        raise reader.error("mirror", None, "must be a table: [mirror]")
    mirror = reader.mirror(mir)
    feeds_data = data.get("feed", [])
    if not isinstance(feeds_data, list):
        raise reader.error("feed", None, "must be an array of tables: [[feed]]")
    feeds: list[Feed] = []
    for index, table in enumerate(feeds_data):
        feed = reader.feed(table, index)
        if any(f.name == feed.name for f in feeds):
            raise reader.error("name", ("feed", index), f"duplicate feed name {feed.name!r}")
        feeds.append(feed)
    advertise = None
    if "advertise" in data:
        advertise = parse_hostport(reader.string(data, "advertise", None, ""))
        if advertise is None:
            raise reader.error(
                "advertise", None, "expected HOST:PORT, e.g. 'gopher.example.org:70'"
            )
    return Config(root, politeness, mirror, tuple(feeds), advertise, source)


def parse_hostport(text: str) -> tuple[str, int] | None:
    """``host:port`` (``[v6]:port`` too) into a pair; ``None`` if it is not one."""
    host, sep, port = text.strip().rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        return None
    return host, int(port)


@attrs.define
class _Reader:
    """Typed access to the parsed TOML with errors that point at a line."""

    text: str
    source: str

    def line_of(self, key: str, table: tuple[str, int | None] | None) -> int | None:
        lines = self.text.splitlines()
        start = 0
        if table is not None:
            name, index = table
            header = re.compile(
                rf"^\s*\[\[\s*{re.escape(name)}\s*\]\]"
                if index is not None
                else rf"^\s*\[\s*{re.escape(name)}\s*\]"
            )
            seen = -1
            for number, line in enumerate(lines):
                if header.match(line):
                    seen += 1
                    if index is None or seen == index:
                        start = number
                        break
            else:
                return None
        pattern = re.compile(rf"^\s*[\"']?{re.escape(key)}[\"']?\s*=")
        for number in range(start, len(lines)):
            if number > start and table is not None and lines[number].lstrip().startswith("["):
                break
            if table is None and number > 0 and lines[number].lstrip().startswith("["):
                break
            if pattern.match(lines[number]):
                return number + 1
        return start + 1 if table is not None else None

    def error(self, key: str, table: tuple[str, int | None] | None, message: str) -> ConfigError:
        dotted = (
            key
            if table is None
            else (f"{table[0]}[{table[1]}].{key}" if table[1] is not None else f"{table[0]}.{key}")
        )
        return ConfigError(message, self.source, self.line_of(key, table), dotted)

    def string(
        self, data: Mapping[str, Any], key: str, table: tuple[str, int | None] | None, default: str
    ) -> str:
        value = data.get(key, default)
        if not isinstance(value, str) or not value.strip():
            raise self.error(key, table, f"must be a non-empty string, not {value!r}")
        return value

    def number(
        self,
        data: Mapping[str, Any],
        key: str,
        table: tuple[str, int | None] | None,
        default: float,
        *,
        minimum: float = 0.0,
        integer: bool = False,
        duration: bool = False,
        size: bool = False,
    ) -> float:
        value = data.get(key, default)
        if isinstance(value, str) and (duration or size):
            parsed = _parse_duration(value) if duration else _parse_size(value)
            if parsed is None:
                kind = (
                    "a duration like '90s', '15m', '1h', '1d'"
                    if duration
                    else "a size like '64MiB'"
                )
                raise self.error(key, table, f"must be a number or {kind}, not {value!r}")
            value = parsed
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.error(key, table, f"must be a number, not {value!r}")
        if not math.isfinite(value) or value < minimum:
            raise self.error(key, table, f"must be at least {minimum:g}, not {value!r}")
        if integer and value != int(value):
            raise self.error(key, table, f"must be a whole number, not {value!r}")
        return value

    def boolean(
        self, data: Mapping[str, Any], key: str, table: tuple[str, int | None], default: bool
    ) -> bool:
        value = data.get(key, default)
        if not isinstance(value, bool):
            raise self.error(key, table, f"must be true or false, not {value!r}")
        return value

    def strings(
        self, data: Mapping[str, Any], key: str, table: tuple[str, int | None]
    ) -> tuple[str, ...]:
        value = data.get(key, [])
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.error(key, table, "must be a list of strings")
        return tuple(value)

    def url(self, value: object, key: str, table: tuple[str, int | None]) -> GopherURL:
        if not isinstance(value, str):
            raise self.error(key, table, f"must be a gopher URL string, not {value!r}")
        try:
            return parse_url(value)
        except BadURL as exc:
            raise self.error(key, table, f"bad URL: {exc.message}") from None

    def politeness(self, pol: Mapping[str, Any]) -> Politeness:
        table = ("politeness", None)
        known = {f.name for f in attrs.fields(Politeness)}
        for key in pol:
            if key not in known:
                raise self.error(key, table, f"unknown key (known: {', '.join(sorted(known))})")
        d = Politeness()
        return Politeness(
            concurrency=int(
                self.number(pol, "concurrency", table, d.concurrency, minimum=1, integer=True)
            ),
            delay=self.number(pol, "delay", table, d.delay, duration=True),
            global_concurrency=int(
                self.number(
                    pol, "global_concurrency", table, d.global_concurrency, minimum=1, integer=True
                )
            ),
            connect_timeout=self.number(
                pol, "connect_timeout", table, d.connect_timeout, minimum=0.01, duration=True
            ),
            idle_timeout=self.number(
                pol, "idle_timeout", table, d.idle_timeout, minimum=0.01, duration=True
            ),
            total_timeout=self.number(
                pol, "total_timeout", table, d.total_timeout, minimum=0.01, duration=True
            ),
            max_size=int(
                self.number(pol, "max_size", table, d.max_size, minimum=1, integer=True, size=True)
            ),
            robots=self.boolean(pol, "robots", table, d.robots),
            retries=int(self.number(pol, "retries", table, d.retries, integer=True)),
        )

    def mirror(self, mir: Mapping[str, Any]) -> MirrorSettings:
        table = ("mirror", None)
        known = {"urls", "depth", "include", "exclude", "follow_hosts", "max_items", "max_selector"}
        for key in mir:
            if key not in known:
                raise self.error(key, table, f"unknown key (known: {', '.join(sorted(known))})")
        urls = tuple(self.url(u, "urls", table) for u in self.strings(mir, "urls", table))
        depth = mir.get("depth")
        if depth is not None:
            depth = int(self.number(mir, "depth", table, 0, integer=True))
        include = self.strings(mir, "include", table)
        exclude = self.strings(mir, "exclude", table)
        for key, patterns in (("include", include), ("exclude", exclude)):
            for pattern in patterns:
                try:
                    re.compile(pattern)
                except re.error as exc:
                    raise self.error(
                        key, table, f"bad regular expression {pattern!r}: {exc}"
                    ) from None
        d = MirrorSettings()
        return MirrorSettings(
            urls=urls,
            depth=depth,
            include=include,
            exclude=exclude,
            follow_hosts=self.boolean(mir, "follow_hosts", table, d.follow_hosts),
            max_items=int(
                self.number(mir, "max_items", table, d.max_items, minimum=1, integer=True)
            ),
            max_selector=int(
                self.number(mir, "max_selector", table, d.max_selector, minimum=1, integer=True)
            ),
        )

    def feed(self, data: object, index: int) -> Feed:
        table = ("feed", index)
        if not isinstance(data, dict):
            raise self.error("feed", None, "each [[feed]] must be a table")
        known = {"name", "url", "interval", "max_items", "max_age", "title"}
        for key in data:
            if key not in known:
                raise self.error(key, table, f"unknown key (known: {', '.join(sorted(known))})")
        if "name" not in data:
            raise self.error("name", table, "missing: every [[feed]] needs a name")
        if "url" not in data:
            raise self.error("url", table, "missing: every [[feed]] needs a url")
        name = self.string(data, "name", table, "")
        if not _NAME_RE.match(name):
            raise self.error("name", table, "use letters, digits, '-' and '_' (it names a file)")
        url = self.url(data["url"], "url", table)
        interval = self.number(data, "interval", table, 3600.0, minimum=1, duration=True)
        max_items = data.get("max_items")
        if max_items is not None:
            max_items = int(self.number(data, "max_items", table, 0, minimum=1, integer=True))
        max_age = data.get("max_age")
        if max_age is not None:
            max_age = self.number(data, "max_age", table, 0, minimum=0, duration=True) / 86400
        title = data.get("title")
        if title is not None and not isinstance(title, str):
            raise self.error("title", table, "must be a string")
        return Feed(name, url, interval, max_items, max_age, title)


def _parse_duration(text: str) -> float | None:
    match = _DURATION_RE.match(text)
    if not match:
        return None
    scale = {"s": 1, "m": 60, "h": 3600, "d": 86400}[(match.group(2) or "s").lower()]
    return float(match.group(1)) * scale


def parse_duration(text: str) -> float:
    """``'90s'``, ``'15m'``, ``'2h'``, ``'7d'`` or a number of seconds; ``ValueError`` if not."""
    value = _parse_duration(text)
    if value is None:
        raise ValueError(f"not a duration: {text!r} (try 90s, 15m, 2h, 7d)")
    return value


def _parse_size(text: str) -> float | None:
    match = _SIZE_RE.match(text)
    if not match:
        return None
    unit = (match.group(2) or "B").upper().rstrip("B").rstrip("I")
    scale = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}[unit]
    return float(match.group(1)) * scale
