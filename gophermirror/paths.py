"""Selector -> relative path: safe, total, collision-free.

Owns: the pure mapping from a gopher selector (arbitrary bytes) to the path of
its copy below the hole directory (``canonical_parts``), the name of a hole
directory (``hole_dirname``), and the rule that settles the collisions the pure
mapping cannot avoid (``resolve``), given a table of paths already claimed.
Must not touch: the file system, the manifest (``resolve`` only *reads* claims
through a lookup the store hands it), the network.  docs/store.md has the rules
with examples.

The escaped alphabet: a component is printable ASCII minus ``= \\ : * ? " < > |``
and ``/``; every other byte is written ``=XX`` (upper-case hex).  ``=`` is the
escape character because gophernicus %-decodes selectors, so ``%`` must stay a
plain byte.  Besides ``=XX`` the escaped text uses exactly three ``=`` forms:

- ``=_``: the whole component is empty (``a//b``);
- ``=~`` + hex: a hashed name (long component, alternate name, long tail);
- nothing else.  So an escaped component never contains ``=~`` unless it was
  hashed, and ``resolve`` checks every name it hands out against the claims,
  so even a hash clash cannot make two keys share a path.
"""

from __future__ import annotations

import hashlib
from typing import Protocol

import attrs

from gophermirror.errors import StoreError

KINDS = ("menu", "file")
"""The two kinds of stored item: a menu is a directory, anything else a file."""

MAP_NAME = "gophermap"
"""The servable map inside a menu directory (written by a later layer)."""

MENU_BODY_NAME = ".gophermirror-menu"
"""The menu bytes as received, inside the menu directory."""

TMP_PREFIX = ".gophermirror-tmp-"
"""Every temporary file the store writes starts with this."""

STATE_DIR = ".gophermirror"
"""The store's own directory below the mirror root (manifest, lock)."""

EMPTY_COMPONENT = "=_"
"""The escaped form of an empty component (from ``//``)."""

HASH_MARK = "=~"
"""Starts the hash suffix of a hashed name; escaping never emits it otherwise."""

LONG_COMPONENT = 200
"""An escaped component longer than this is shortened (Linux NAME_MAX is 255)."""

LONG_KEEP = 160
"""How many leading characters of a long component survive."""

MAX_CANONICAL_PATH = 3500
"""Longest canonical path below the hole dir before the tail is hashed."""

MAX_RESOLVED_PATH = 3720
"""Longest path below ROOT (hole dir included) that ``resolve`` hands out."""

_RESERVED = frozenset({"gophermap", "gophertag"})
# `%` and `#` too: gophernicus decodes %XX and #OOO in requests, so a file
# named with them could not be asked for.
_SAFE = frozenset(b for b in range(0x21, 0x7F) if b not in b'=\\:*?"<>|/%#')
_ESCAPE = tuple(chr(b) if b in _SAFE else f"={b:02X}" for b in range(256))
_HEX = frozenset("0123456789ABCDEF")
_TAIL_HEX = 32
_NAME_HEX = 16
_MAX_ATTEMPTS = 8


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"kind must be 'menu' or 'file', not {kind!r}")


def _hex(data: bytes, n: int) -> str:
    return hashlib.sha256(data).hexdigest()[:n]


def escape_component(raw: bytes) -> str:
    """Escape one selector component (no ``/`` splitting here) to a safe name.

    Injective for components whose escaped form is at most ``LONG_COMPONENT``
    characters; longer ones keep a prefix plus a hash of ``raw``.
    """
    if not raw:
        return EMPTY_COMPONENT
    text = "".join([_ESCAPE[b] for b in raw])
    if raw[0] == 0x2E:  # a leading dot: hidden files, '.', '..', .gophermirror*
        text = "=2E" + text[1:]
    elif text.lower() in _RESERVED:
        text = f"={raw[0]:02X}" + text[1:]
    # No ".." inside a name and no "." at its end: pygopherd refuses any path
    # holding "../" or "./" (so "v1..2" or "a./b" would be unreachable).
    while ".." in text:
        text = text.replace("..", ".=2E")
    if text.endswith("."):
        text = text[:-1] + "=2E"
    if len(text) > LONG_COMPONENT:
        cut = LONG_KEEP
        # every '=' in escaped text starts a 3-character '=XX': never cut inside one
        if text[cut - 1] == "=":
            cut -= 1
        elif text[cut - 2] == "=":
            cut -= 2
        text = text[:cut] + HASH_MARK + _hex(raw, _NAME_HEX)
    return text


def unescape_component(name: str) -> bytes | None:
    """Invert ``escape_component``; None if ``name`` is hashed or not canonical."""
    if name == EMPTY_COMPONENT:
        return b""
    out = bytearray()
    i = 0
    while i < len(name):
        ch = name[i]
        if ch == "=":
            code = name[i + 1 : i + 3]
            if len(code) != 2 or not set(code) <= _HEX:
                return None
            out.append(int(code, 16))
            i += 3
        elif ord(ch) < 128 and ord(ch) in _SAFE:
            out.append(ord(ch))
            i += 1
        else:
            return None
    raw = bytes(out)
    return raw if escape_component(raw) == name else None


def hole_dirname(host: str, port: int) -> str:
    """The directory name of a hole: lower-cased host, ``_``, port, escaped."""
    if not 0 <= port <= 65535:
        raise ValueError(f"port out of range: {port}")
    return escape_component(f"{host.lower()}_{port}".encode())


def parse_hole_dirname(name: str) -> tuple[str, int] | None:
    """Invert ``hole_dirname``; None for names it cannot have produced."""
    raw = unescape_component(name)
    if raw is None:
        return None
    host, sep, port = raw.decode("utf-8", "replace").rpartition("_")
    if not sep or not port.isascii() or not port.isdigit() or len(port) > 5:
        return None
    if hole_dirname(host, int(port)) != name:
        return None
    return host, int(port)


def _components(selector: bytes, kind: str) -> list[bytes]:
    rest = selector[1:] if selector.startswith(b"/") else selector
    if kind == "menu":
        if not rest:
            return []
        parts = rest.split(b"/")
        if parts[-1] == b"":
            parts.pop()
        return parts
    return rest.split(b"/")


def _tail_name(raw_tail: list[bytes]) -> str:
    return HASH_MARK + _hex(b"tail\0" + b"/".join(raw_tail), _TAIL_HEX)


@attrs.frozen
class _Layout:
    parts: tuple[str, ...]
    """Canonical names below the hole dir."""
    prefixes: tuple[bytes, ...]
    """For each part, the selector bytes up to the end of that component."""


def _layout(selector: bytes, kind: str) -> _Layout:
    _check_kind(kind)
    raw = _components(selector, kind)
    names = [escape_component(c) for c in raw]
    start = 1 if selector.startswith(b"/") else 0
    prefixes = []
    for comp in raw:
        prefixes.append(selector[: start + len(comp)])
        start += len(comp) + 1
    if len("/".join(names)) > MAX_CANONICAL_PATH:
        keep, used = 0, 0
        for name in names:
            if used + len(name) + 1 + len(HASH_MARK) + _TAIL_HEX > MAX_CANONICAL_PATH:
                break
            used += len(name) + 1
            keep += 1
        names = [*names[:keep], _tail_name(raw[keep:])]
        prefixes = [*prefixes[:keep], selector]
    return _Layout(tuple(names), tuple(prefixes))


def canonical_parts(selector: bytes, kind: str) -> tuple[str, ...]:
    """The canonical path of ``(selector, kind)`` below its hole dir, as names.

    One leading ``/`` is stripped, the rest split on ``/``; a menu drops one
    trailing empty component (so ``b""`` and ``b"/"`` give ``()``, the hole dir
    itself).  Each component goes through ``escape_component``.  If the joined
    path is longer than ``MAX_CANONICAL_PATH``, the components that do not fit
    are replaced by one name: ``=~`` + 32 hex of sha256(b"tail\\0" + the raw
    tail components joined by ``/``).
    """
    return _layout(selector, kind).parts


def owner_key(host: str, port: int, selector: bytes, kind: str) -> bytes:
    """The identity of a stored item in the claims table (32 bytes)."""
    _check_kind(kind)
    return hashlib.sha256(
        b"\0".join([b"gophermirror-key", kind.encode(), host.encode(), b"%d" % port, selector])
    ).digest()


def alternate_name(name: str, key: bytes, attempt: int = 0) -> str:
    """``name`` + ``=~`` + 16 hex of sha256(key); later attempts add a counter.

    ``key`` is b"m"/b"f" + the full selector for the final component of a
    menu/file, or b"d" + the selector prefix for a directory on the way.
    """
    data = key if attempt == 0 else key + b"\0%d" % attempt
    return name + HASH_MARK + _hex(data, _NAME_HEX)


@attrs.frozen
class Claim:
    """One path handed out below ROOT, as the claims table holds it."""

    path: str
    """Exact relative path below ROOT, ``/``-separated."""
    kind: str
    """``'dir'`` or ``'file'``."""
    owner: bytes | None
    """``owner_key`` of the item stored there; None for a directory on the way."""

    @property
    def fold(self) -> str:
        """The case-folded path: the table's key (names are pure ASCII)."""
        return self.path.lower()


class ClaimLookup(Protocol):
    """Read access to the claims table, keyed by case-folded path."""

    def lookup(self, fold: str) -> Claim | None:
        """The claim whose case-folded path is ``fold``, if any."""
        ...


@attrs.frozen
class Resolution:
    """Where an item goes, and the claims to record for it."""

    path: str
    """The item's relative path below ROOT (a directory for a menu)."""
    claims: tuple[Claim, ...]
    """New claims, or directory claims that gain this owner; record them all."""


@attrs.define(eq=False)
class _Resolver:
    lookup: ClaimLookup
    owner: bytes
    made: dict[str, Claim] = attrs.Factory(dict)

    def _find(self, fold: str) -> Claim | None:
        return self.made.get(fold) or self.lookup.lookup(fold)

    def take(
        self,
        parent: str,
        name: str,
        want: str,
        *,
        final: bool,
        alt_key: bytes,
        attempts: range = range(_MAX_ATTEMPTS),
    ) -> str:
        owner = self.owner if final else None
        for attempt in attempts:
            candidate = name if attempt == 0 else alternate_name(name, alt_key, attempt - 1)
            path = f"{parent}/{candidate}" if parent else candidate
            claim = self._find(path.lower())
            if claim is None:
                self.made[path.lower()] = Claim(path, want, owner)
                return path
            if claim.path != path or claim.kind != want:
                continue  # a case variant, or the other kind
            if claim.owner == self.owner and owner is not None:
                return path
            if want == "dir" and owner is None:
                return path  # directories on the way are shared
            if want == "dir" and claim.owner is None:
                self.made[path.lower()] = Claim(path, want, owner)  # a menu takes over a dir
                return path
        raise StoreError(f"no free path for {name!r} after {_MAX_ATTEMPTS} tries", parent)


def resolve(hole: str, selector: bytes, kind: str, owner: bytes, claims: ClaimLookup) -> Resolution:
    """Settle the path of ``(selector, kind)`` in hole dir ``hole`` against ``claims``.

    The first claimant of a path keeps the canonical name.  A later one whose
    path, or a directory on the way, is taken by the other kind, by a case
    variant, or (for the final name) by another owner, gets that one name
    replaced by ``alternate_name``: key b"m"/b"f" + selector for the final name,
    b"d" + the selector prefix for a directory; the rest hangs below it.
    """
    layout = _layout(selector, kind)
    resolver = _Resolver(claims, owner)
    want_final = "dir" if kind == "menu" else "file"
    final_key = (b"m" if kind == "menu" else b"f") + selector
    parts = layout.parts
    only = range(1)  # the hole dir never gets an alternate name
    if not parts:  # a root menu: the hole dir itself, unless another root menu has it
        try:
            return Resolution(
                resolver.take("", hole, "dir", final=True, alt_key=b"", attempts=only),
                tuple(resolver.made.values()),
            )
        except StoreError:
            pass
        resolver.take("", hole, "dir", final=False, alt_key=b"", attempts=only)
        path = resolver.take(
            hole,
            EMPTY_COMPONENT,
            "dir",
            final=True,
            alt_key=final_key,
            attempts=range(1, _MAX_ATTEMPTS),
        )
        return Resolution(path, tuple(resolver.made.values()))
    path = resolver.take("", hole, "dir", final=False, alt_key=b"", attempts=only)
    for i, name in enumerate(parts):
        rest = len("/".join(parts[i:]))
        if len(path) + 1 + rest > MAX_RESOLVED_PATH:
            over = HASH_MARK + _hex(b"over\0" + final_key, _TAIL_HEX)
            path = resolver.take(path, over, want_final, final=True, alt_key=final_key)
            break
        if i == len(parts) - 1:
            path = resolver.take(path, name, want_final, final=True, alt_key=final_key)
        else:
            prefix_key = b"d" + layout.prefixes[i]
            path = resolver.take(path, name, "dir", final=False, alt_key=prefix_key)
    return Resolution(path, tuple(resolver.made.values()))
