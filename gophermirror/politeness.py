"""Politeness toward one server: robots.txt, caps.txt and the request gate.

Owns: parsing robots.txt the way gopherspace uses it (selector prefixes,
``Crawl-delay``), parsing caps.txt, and ``HostGate``, which holds a host to
N connections at once and a least delay between the starts of two
requests.  Must not touch: sockets (the crawler fetches the files), the
store.
"""

from __future__ import annotations

import math

import attrs
import trio

from .protocol import decode_for_humans, split_lines

AGENTS = ("gophermirror", "*")


@attrs.frozen
class Robots:
    """The rules of one host's robots.txt that apply to us."""

    disallow: tuple[bytes, ...] = ()
    """Selector prefixes we must not fetch."""
    allow: tuple[bytes, ...] = ()
    """Prefixes allowed again (the longest match wins, as in RFC 9309)."""
    crawl_delay: float | None = None
    """Seconds between requests the host asks for, if any."""
    _disallow_set: frozenset[bytes] = attrs.field(init=False, repr=False, eq=False)
    _allow_set: frozenset[bytes] = attrs.field(init=False, repr=False, eq=False)

    def __attrs_post_init__(self) -> None:
        # Sets, so that a robots.txt of 40,000 rules costs a lookup per
        # selector length, not a comparison per rule, for every item.
        object.__setattr__(self, "_disallow_set", frozenset(self.disallow))
        object.__setattr__(self, "_allow_set", frozenset(self.allow))

    def allows(self, selector: bytes) -> bool:
        """Whether ``selector`` may be fetched.

        The longest matching prefix decides, ``Allow`` winning a tie.  A
        prefix matches when the selector starts with it, or when it is the
        selector plus a final ``/`` ("Disallow: /path/" covers "/path" too,
        veronica-2's reading).
        """
        if not self._disallow_set:
            return True
        allow, disallow = self._allow_set, self._disallow_set
        slashed = selector + b"/"
        if slashed in allow:
            return True
        if slashed in disallow:
            return False
        for end in range(len(selector), -1, -1):
            prefix = selector[:end]
            if prefix in allow:
                return True
            if prefix in disallow:
                return False
        return True


def parse_robots(data: bytes) -> Robots:
    """Read robots.txt bytes; a file that is not robots.txt allows everything.

    Groups for ``User-agent: gophermirror`` win over ``User-agent: *``.
    """
    groups: dict[str, dict[str, list[bytes]]] = {}
    current: list[str] = []
    in_rules = False
    for line, _eol in split_lines(data[: 512 * 1024]):
        line = line.split(b"#", 1)[0].strip()
        if b":" not in line:
            continue
        key_raw, _, value = line.partition(b":")
        key = key_raw.strip().lower()
        value = value.strip()
        if key == b"user-agent":
            if in_rules:
                current, in_rules = [], False
            agent = decode_for_humans(value).lower()
            current.append(agent)
            groups.setdefault(agent, {"disallow": [], "allow": [], "crawl-delay": []})
        elif key in (b"disallow", b"allow", b"crawl-delay") and current:
            in_rules = True
            for agent in current:
                groups[agent][key.decode()].append(value)
    for agent in AGENTS:
        group = groups.get(agent)
        if group is None:
            continue
        delay: float | None = None
        for raw in group["crawl-delay"]:
            try:
                value_f = float(raw)
            except ValueError:
                continue
            if math.isfinite(value_f) and value_f >= 0:
                delay = min(value_f, 60.0)
        return Robots(
            disallow=tuple(p for p in group["disallow"] if p),
            allow=tuple(p for p in group["allow"] if p),
            crawl_delay=delay,
        )
    return Robots()


@attrs.frozen
class Caps:
    """What a server's caps.txt says (only the keys a mirror can use)."""

    values: tuple[tuple[str, str], ...] = ()
    """Every ``key=value`` pair, in order."""

    def get(self, key: str) -> str | None:
        """The value of ``key``, or ``None``."""
        for k, v in self.values:
            if k == key:
                return v
        return None

    @property
    def software(self) -> str | None:
        """``ServerSoftware`` and version, if given."""
        name = self.get("ServerSoftware")
        version = self.get("ServerSoftwareVersion")
        return f"{name} {version}" if name and version else name


def parse_caps(data: bytes) -> Caps | None:
    """Read caps.txt; ``None`` unless its first line is ``CAPS``."""
    lines = [line for line, _ in split_lines(data[: 64 * 1024])]
    if not lines or lines[0].strip() != b"CAPS":
        return None
    pairs = []
    for line in lines[1:]:
        text = decode_for_humans(line).strip()
        if not text or text.startswith("#") or "=" not in text:
            continue
        key, _, value = text.partition("=")
        pairs.append((key.strip(), value.strip()))
    return Caps(tuple(pairs))


@attrs.define(eq=False)
class HostGate:
    """Limits requests to one host: ``concurrency`` at once, ``delay`` apart.

    ``async with gate:`` around each request.  The delay is between the
    starts of two requests, so 0 means no waiting at all.
    """

    concurrency: int = 2
    delay: float = 0.0
    _slots: trio.Semaphore = attrs.field(init=False)
    _lock: trio.Lock = attrs.field(factory=trio.Lock, init=False)
    _next_start: float = attrs.field(default=-math.inf, init=False)

    def __attrs_post_init__(self) -> None:
        self._slots = trio.Semaphore(self.concurrency)

    def slow_down(self, delay: float) -> None:
        """Raise the delay (a robots.txt ``Crawl-delay``); never lowers it."""
        self.delay = max(self.delay, delay)

    async def __aenter__(self) -> None:
        await self._slots.acquire()
        if self.delay <= 0:
            return
        try:
            async with self._lock:
                now = trio.current_time()
                wait = self._next_start - now
                if wait > 0:
                    await trio.sleep(wait)
                    now = trio.current_time()
                self._next_start = now + self.delay
        except BaseException:
            self._slots.release()
            raise

    async def __aexit__(self, *exc: object) -> None:
        self._slots.release()
