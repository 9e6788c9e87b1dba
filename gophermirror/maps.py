"""Servable gophermaps, and menus rewritten for the server that re-serves them.

Owns: deciding which menu links are *local* (their target is in the mirror),
the mirror's view of itself for serving (``MirrorIndex``: origin selector,
mirror path and (host, port, selector, kind) -> entry), the ``gophermap``
written next to each stored menu in one of four dialects (``MAP_FORMATS``),
the generated root menu (``ROOT/gophermap``) and the rewriting of a stored
menu for the built-in server (``rewrite_menu_for_server``).
Must not touch: the network, the stored bodies (read only; maps are written
through ``Store.write_aux``), the manifest rows.  Menus are parsed and
formatted with ``protocol.py`` only.

A local link points at ``/<manifest path>`` (the hole directory and the
item's escaped path), so a standard server whose document root is the
mirror ROOT finds the item.  Everything else in a menu is copied: info
lines, links to other hosts, links to items of the same origin that are not
mirrored.  Each dialect then works around what its server cannot express
(docs/servers.md measures them; docs/serving.md says what changes):

- ``gophernicus``: lines that start with one of its map directives
  (``#!*.~%-:=``) become info lines (``=`` would include a file or run a
  command); lines longer than its 1022-byte read buffer are shortened (the
  rest would be read as a new line); ``%`` and ``#`` in local selectors are
  percent-encoded because it decodes them; a lone CR becomes a space.
- ``pygopherd``: a blank info line is written as an empty line (its parser
  throws on it and the whole menu is lost), an empty link selector as ``/``
  (it would put the display string there), a line starting with a TAB or a
  space as an info line, a non-numeric port as its leading digits or ``0``.
  Given the advertised host and port, local links keep (``+`` lines) or
  lose (others) pygopherd's own Gopher+ marker to match the origin.
- ``default``: both sets of workarounds, so one map serves on both.
- ``bucktooth``: the origin lines as they are, local links made absolute.
"""

from __future__ import annotations

import collections
import os
import re
import stat
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Final, Protocol

import attrs

from .errors import BadMenuLine, StoreError
from .paths import MAP_NAME, MENU_BODY_NAME, STATE_DIR
from .protocol import (
    ERROR,
    INFO,
    MENU,
    NON_FETCHABLE_TYPES,
    TEXT,
    MenuItem,
    MenuLine,
    RawLine,
    decode_for_humans,
    format_menu_line,
    info_line,
    parse_menu,
    parse_menu_line,
    url_for_item,
)
from .store import Entry, Store

MAP_FORMATS: Final = ("default", "gophernicus", "pygopherd", "bucktooth")
"""The gophermap dialects ``write_gophermap`` and ``export`` can write."""

LATEST_DIR: Final = "latest"
"""``ROOT/latest/gophermap``: the feed layer's menu of new items."""

ATOM_DIR: Final = "atom"
"""``ROOT/atom/<name>.xml``: the feed layer's Atom documents."""

ROOT_MAP: Final = MAP_NAME
"""The generated root menu, ``ROOT/gophermap``."""

ATOM_NAME_RE: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,200}\.xml$")
"""Names of Atom files that are listed and served (nothing else under atom/)."""

GOPHERNICUS_DIRECTIVES: Final = frozenset(b"#!*.~%-:=")
"""First bytes a gophernicus map line treats as a command, not as an item."""

GOPHERNICUS_LINE_MAX: Final = 1022
"""Longest map line gophernicus reads in one piece, line ending included."""

PYGOPHERD_REFUSED: Final = (b"./", b"..", b"//", b".\\", b"\\\\", b"\0")
"""pygopherd answers "does not exist" to a selector containing any of these."""

_INFO_TYPES: Final = frozenset({INFO, ERROR})
_MAX_START_MENUS: Final = 20

# Reasons counted in ``MapNotes``: what a dialect had to change or cannot keep.
DIRECTIVE = "line starting with a gophernicus directive written as an info line"
LONG_LINE = "line longer than gophernicus reads, shortened"
LONE_CR = "lone CR inside a line replaced by a space"
NUL = "NUL bytes removed from a line"
BLANK_INFO = "blank info line written as an empty line (pygopherd)"
EMPTY_SELECTOR = "empty selector of a link written as / (pygopherd)"
BAD_START = "line starting with a TAB or a space written as an info line (pygopherd)"
BAD_PORT = "non-numeric port written as a number (pygopherd)"
PLUS_DROPPED_GN = "Gopher+ field after the port: gophernicus does not send it"
PLUS_DROPPED_PG = "Gopher+ field after the port: pygopherd does not send it"
PLUS_ADDED_PG = "local link without Gopher+ marker: pygopherd adds its own"
PERCENT = "local selector with % or # (gophernicus decodes them: use --format gophernicus)"
PYGOPHERD_UNSERVABLE = "local item pygopherd refuses to serve (.. ./ // in its path)"


@attrs.define(eq=False)
class MapNotes:
    """What writing maps changed, counted by reason (for reports)."""

    counts: collections.Counter[str] = attrs.Factory(collections.Counter)
    """Reason -> number of lines."""
    menus: int = 0
    """Maps written."""

    def add(self, reason: str, n: int = 1) -> None:
        """Count ``n`` lines for ``reason``."""
        self.counts[reason] += n


class EntryLookup(Protocol):
    """Anything that finds a manifest row by its key (``Store``, ``MirrorIndex``)."""

    def get(self, host: str, port: int, selector: bytes, kind: str) -> Entry | None:
        """The row of ``(host, port, selector, kind)``, or None."""
        ...


# --------------------------------------------------------------------------
# Which links are local
# --------------------------------------------------------------------------


def servable(entry: Entry) -> bool:
    """Whether the mirror holds a body for ``entry`` (ok, or gone but kept)."""
    return bool(entry.sha256)


def kind_for_type(item_type: bytes) -> str | None:
    """The store kind a link of ``item_type`` is fetched as; None if never fetched."""
    if item_type in NON_FETCHABLE_TYPES:
        return None
    return "menu" if item_type == MENU else "file"


def link_target(lookup: EntryLookup, item: MenuItem) -> Entry | None:
    """The mirrored entry a menu line links to, or None (info, foreign, not mirrored)."""
    if item.selector is None or item.port_raw is None or item.host is None:
        return None
    kind = kind_for_type(item.type)
    if kind is None or item.is_url_link:
        return None
    try:
        url = url_for_item(item)
    except BadMenuLine:
        return None
    entry = lookup.get(url.host, url.port, url.selector, kind)
    if entry is None or not servable(entry):
        return None
    return entry


def local_selector(entry: Entry) -> bytes:
    """The selector of ``entry`` on a server whose root is the mirror ROOT."""
    return b"/" + entry.path.encode("utf-8")


def local_link(entry: Entry, display: bytes | str, item_type: bytes | None = None) -> MenuItem:
    """A two-field map line to ``entry`` (host and port left to the server)."""
    disp = display.encode("utf-8") if isinstance(display, str) else display
    disp = disp.replace(b"\t", b" ").replace(b"\r", b" ").replace(b"\n", b" ")
    return MenuItem(item_type or entry.item_type, disp, local_selector(entry), None, None)


# --------------------------------------------------------------------------
# The mirror's view of itself, for serving
# --------------------------------------------------------------------------


@attrs.define(eq=False)
class MirrorIndex:
    """Every servable row, found by key, by origin selector or by mirror path.

    ``by_selector`` holds the rule of the built-in server: with one hole, a
    request is that hole's selector; with several, the first hole (sorted by
    host and port) that has the selector wins, a menu before a file, and the
    empty selector and ``/`` are left to the generated root menu.
    """

    holes: tuple[tuple[str, int], ...]
    """Every (host, port) with a servable row, sorted."""
    by_key: dict[tuple[str, int, bytes, str], Entry]
    """(host, port, selector, kind) -> row."""
    by_selector: dict[bytes, Entry]
    """Request selector -> row (see the class docstring)."""
    by_path: dict[str, Entry]
    """Manifest path (relative to ROOT) -> row."""

    @classmethod
    def build(cls, entries: Iterable[Entry]) -> MirrorIndex:
        """Index the servable rows of ``entries``."""
        by_key: dict[tuple[str, int, bytes, str], Entry] = {}
        by_path: dict[str, Entry] = {}
        for entry in entries:
            if not servable(entry):
                continue
            by_key[(entry.host, entry.port, entry.selector, entry.kind)] = entry
            by_path[entry.path] = entry
        holes = tuple(sorted({(host, port) for host, port, _s, _k in by_key}))
        rank = {hole: i for i, hole in enumerate(holes)}
        by_selector: dict[bytes, Entry] = {}
        ordered = sorted(
            by_key.values(),
            key=lambda e: (rank[(e.host, e.port)], e.kind != "menu"),
        )
        several = len(holes) > 1
        for entry in ordered:
            if several and entry.selector in (b"", b"/"):
                continue
            by_selector.setdefault(entry.selector, entry)
        return cls(holes, by_key, by_selector, by_path)

    @classmethod
    def from_store(cls, store: Store) -> MirrorIndex:
        """Index every row of ``store``."""
        return cls.build(store.entries())

    def get(self, host: str, port: int, selector: bytes, kind: str) -> Entry | None:
        """The servable row of a key, or None (the ``EntryLookup`` protocol)."""
        return self.by_key.get((host.lower(), port, selector, kind))

    def resolve_selector(self, selector: bytes) -> Entry | None:
        """The row a request for an origin selector gets, or None."""
        return self.by_selector.get(selector)

    def resolve_path(self, selector: bytes) -> Entry | None:
        """The row of a path-form selector ``/<manifest path>``, or None."""
        if not selector.startswith(b"/"):
            return None
        try:
            path = selector[1:].decode("utf-8")
        except UnicodeDecodeError:
            return None
        found = self.by_path.get(path)
        if found is None and path.endswith("/"):
            found = self.by_path.get(path[:-1])
        return found

    def __len__(self) -> int:
        return len(self.by_key)


# --------------------------------------------------------------------------
# Menus for the built-in server
# --------------------------------------------------------------------------


def rewrite_menu_for_server(
    store: EntryLookup,
    entry: Entry,
    body: bytes,
    *,
    host: str,
    port: int,
    selector_style: str = "origin",
    index: MirrorIndex | None = None,
) -> bytes:
    """The stored menu ``body`` with only the links to mirrored items changed.

    Such a link gets ``host`` and ``port``; its selector stays the origin's
    when ``selector_style`` is ``'origin'`` and the built-in server resolves
    that selector to the same item, otherwise it becomes the path form
    ``/<manifest path>`` (which the built-in server and standard servers
    both resolve).  Every other byte (display, extra fields, line endings,
    every other line) is kept.  ``entry`` is the menu itself (unused by the
    rule, kept for the callers' symmetry).
    """
    del entry
    if selector_style not in ("origin", "path"):
        raise ValueError(f"selector_style must be 'origin' or 'path', not {selector_style!r}")
    if index is None:
        index = store if isinstance(store, MirrorIndex) else None
    if index is None and selector_style == "origin":
        if not isinstance(store, Store):
            raise TypeError("selector_style='origin' needs a Store or a MirrorIndex")
        index = MirrorIndex.from_store(store)
    lookup: EntryLookup = index if index is not None else store
    host_field = host.encode("utf-8")
    port_field = str(port).encode("ascii")
    out: list[bytes] = []
    for line in parse_menu(body).lines:
        if isinstance(line, MenuItem):
            target = link_target(lookup, line)
            if target is not None:
                selector = local_selector(target)
                if (
                    selector_style == "origin"
                    and index is not None
                    and index.resolve_selector(target.selector) is target
                ):
                    selector = target.selector
                line = line.replace(selector=selector, host=host_field, port_raw=port_field)
        out.append(format_menu_line(line))
    return b"".join(out)


def fill_host_port(map_data: bytes, *, host: str, port: int) -> bytes:
    """A generated map (root, latest) as a menu: local lines get ``host``/``port``.

    Lines without a TAB become info lines, as standard servers show them;
    lines with a selector but no host get ``host`` and ``port``.
    """
    host_field = host.encode("utf-8")
    port_field = str(port).encode("ascii")
    out: list[bytes] = []
    for line in parse_menu(map_data).lines:
        if isinstance(line, RawLine):
            out.append(format_menu_line(info_line(line.data.replace(b"\0", b""), eol=b"\r\n")))
            continue
        if line.selector is None:
            text = line.type + line.display
            out.append(format_menu_line(info_line(text, eol=b"\r\n")))
            continue
        if not line.host:
            line = line.replace(host=host_field, port_raw=port_field, extra=())
        elif line.port_raw is None:
            line = line.replace(port_raw=port_field)
        out.append(format_menu_line(line.replace(eol=b"\r\n")))
    return b"".join(out)


# --------------------------------------------------------------------------
# Gophermaps in each dialect
# --------------------------------------------------------------------------


@attrs.frozen
class _Dialect:
    """How one map format writes a line."""

    name: str
    """One of ``MAP_FORMATS``."""
    gophernicus: bool
    """Apply gophernicus's workarounds."""
    pygopherd: bool
    """Apply pygopherd's workarounds."""
    advertise: tuple[bytes, bytes] | None
    """Host and port fields written into local links, or None to leave them out."""


def _dialect(fmt: str, advertise: tuple[str, int] | None) -> _Dialect:
    if fmt not in MAP_FORMATS:
        raise ValueError(f"unknown map format {fmt!r} (one of {', '.join(MAP_FORMATS)})")
    adv = None
    if advertise is not None:
        adv = (advertise[0].encode("utf-8"), str(advertise[1]).encode("ascii"))
    return _Dialect(
        fmt,
        gophernicus=fmt in ("default", "gophernicus"),
        pygopherd=fmt in ("default", "pygopherd"),
        advertise=adv,
    )


def render_map(
    lines: Iterable[MenuLine],
    lookup: EntryLookup | None,
    *,
    fmt: str = "default",
    advertise: tuple[str, int] | None = None,
    notes: MapNotes | None = None,
) -> bytes:
    """Menu lines as a gophermap in dialect ``fmt``.

    ``lookup`` finds mirrored targets (links to them become local); None
    keeps every link as it is (lines already local, e.g. generated ones,
    are recognised by a missing host field).  ``advertise`` writes that
    host and port into local links instead of leaving them to the server.
    """
    dialect = _dialect(fmt, advertise)
    notes = notes if notes is not None else MapNotes()
    return b"".join(_map_line(line, lookup, dialect, notes) for line in lines)


def _map_line(line: MenuLine, lookup: EntryLookup | None, d: _Dialect, notes: MapNotes) -> bytes:
    if isinstance(line, RawLine):
        data = line.data
        if b"\0" in data:
            data = data.replace(b"\0", b"")
            notes.add(NUL)
        if not data:
            return line.eol or b"\r\n"
        try:
            item = parse_menu_line(data, line.eol)
        except BadMenuLine:  # over 1 MiB: keep a readable stub
            item = _as_info(data[:200] + b"...", line.eol)
    else:
        item = line
    if lookup is not None:
        target = link_target(lookup, item)
        if target is not None:
            item = _local_item(item, local_selector(target), d, notes)
    elif item.host is None and item.selector is not None and item.selector.startswith(b"/"):
        item = _local_item(item, item.selector, d, notes)  # a generated local line
    return _dialect_line(item, d, notes)


def _local_item(item: MenuItem, selector: bytes, d: _Dialect, notes: MapNotes) -> MenuItem:
    if d.name == "gophernicus":
        selector = selector.replace(b"%", b"%25").replace(b"#", b"%23")
    elif d.gophernicus and (b"%" in selector or b"#" in selector):
        notes.add(PERCENT)
    if d.pygopherd and any(bad in selector for bad in PYGOPHERD_REFUSED):
        notes.add(PYGOPHERD_UNSERVABLE)
    plus = item.is_gopher_plus
    # pygopherd sends its own "+" exactly when host and port are left out.
    keep_out = d.advertise is None or (d.name == "pygopherd" and plus)
    if d.gophernicus and plus:
        notes.add(PLUS_DROPPED_GN)
    if d.pygopherd and plus and not keep_out:
        notes.add(PLUS_DROPPED_PG)
    if d.pygopherd and keep_out and not plus:
        notes.add(PLUS_ADDED_PG)
    if keep_out:
        return MenuItem(item.type, item.display, selector, None, None, (), item.eol)
    assert d.advertise is not None
    host, port = d.advertise
    return item.replace(selector=selector, host=host, port_raw=port)


def _blank_for_pygopherd(field: bytes) -> bool:
    """Whether pygopherd's ``str.strip()`` leaves nothing of ``field``."""
    return not field.decode("utf-8", "surrogateescape").strip()


def _as_info(text: bytes, eol: bytes) -> MenuItem:
    return info_line(text, eol=eol)


def _dialect_line(item: MenuItem, d: _Dialect, notes: MapNotes) -> bytes:
    if d.name == "bucktooth":
        return format_menu_line(item)
    first = item.type[:1]
    if d.gophernicus and first and first[0] in GOPHERNICUS_DIRECTIVES:
        item = _as_info(format_menu_line(item.replace(eol=b"")), item.eol)
        notes.add(DIRECTIVE)
    elif d.pygopherd and (item.selector is not None or item.type == b"\t"):
        head = (item.type + item.display).decode("utf-8", "surrogateescape")
        if not head or head[0].isspace():
            item = _as_info(format_menu_line(item.replace(eol=b"")), item.eol)
            notes.add(BAD_START)
    if d.pygopherd and item.selector is not None:
        empty_selector = _blank_for_pygopherd(item.selector)
        if item.type in _INFO_TYPES:
            if empty_selector and _blank_for_pygopherd(item.display):
                notes.add(BLANK_INFO)
                return item.eol or b"\r\n"
        elif empty_selector:
            item = item.replace(selector=b"/")
            notes.add(EMPTY_SELECTOR)
        if item.port_raw is not None:
            port = item.port_raw.strip()
            if port and not port.isdigit():
                digits = re.match(rb"[0-9]*", port)
                item = item.replace(port_raw=(digits.group(0) if digits else b"") or b"0")
                notes.add(BAD_PORT)
    if item.is_gopher_plus and item.host is not None:
        if d.gophernicus:
            notes.add(PLUS_DROPPED_GN)
        if d.pygopherd:
            notes.add(PLUS_DROPPED_PG)
    data = format_menu_line(item.replace(eol=b""))
    if d.gophernicus:
        if b"\r" in data:
            data = data.replace(b"\r", b" ")
            notes.add(LONE_CR)
        if len(data) + 2 > GOPHERNICUS_LINE_MAX:
            data = _fit_gophernicus(item, data)
            notes.add(LONG_LINE)
    return data + item.eol


def _fit_gophernicus(item: MenuItem, data: bytes) -> bytes:
    """Shorten the display so the line (CRLF included) fits gophernicus's buffer."""
    room = GOPHERNICUS_LINE_MAX - 2 - (len(data) - len(item.display))
    if room >= 0:
        display = _cut_utf8(item.display, room)
        return format_menu_line(item.replace(display=display, eol=b"")).replace(b"\r", b" ")
    text = f"(menu line of {len(data)} bytes: too long for gophernicus)"
    return format_menu_line(info_line(text, eol=b""))


def _cut_utf8(data: bytes, size: int) -> bytes:
    """``data[:size]``, moved back (at most 3 bytes) so as not to split a UTF-8 sequence."""
    if len(data) <= size:
        return data
    cut = size
    while cut > 0 and size - cut < 3 and (data[cut] & 0xC0) == 0x80:
        cut -= 1
    return data[:cut]


# --------------------------------------------------------------------------
# Writing maps into the store
# --------------------------------------------------------------------------


def map_relpath(entry: Entry) -> str:
    """Where the gophermap of menu ``entry`` goes, relative to ROOT."""
    return f"{entry.path}/{MAP_NAME}"


def write_gophermap(
    store: Store,
    entry: Entry,
    *,
    fmt: str = "default",
    advertise: tuple[str, int] | None = None,
    notes: MapNotes | None = None,
) -> None:
    """Write the servable map of one stored menu (``<menu dir>/gophermap``).

    Links to items the mirror holds point at their mirror path; the rest is
    the menu as received, in dialect ``fmt``.  A row with no body is skipped.
    """
    if entry.kind != "menu" or not servable(entry):
        return
    notes = notes if notes is not None else MapNotes()
    body = store.read_body(entry)
    data = render_map(parse_menu(body).lines, store, fmt=fmt, advertise=advertise, notes=notes)
    store.write_aux(map_relpath(entry), data)
    notes.menus += 1


def write_all_maps(
    store: Store,
    *,
    fmt: str = "default",
    host: str | None = None,
    port: int | None = None,
    advertise: tuple[str, int] | None = None,
    notes: MapNotes | None = None,
) -> int:
    """Rewrite the map of every stored menu (of one hole, if ``host``/``port``).

    Run it when a crawl ends: links to items fetched after their menu was
    stored become local.  Returns the number of maps written.
    """
    notes = notes if notes is not None else MapNotes()
    menus = [e for e in store.entries(host, port) if e.kind == "menu" and servable(e)]
    for entry in menus:
        write_gophermap(store, entry, fmt=fmt, advertise=advertise, notes=notes)
    return len(menus)


def generated_link(item_type: bytes, display: bytes | str, selector: bytes) -> MenuItem:
    """A map line to ``selector`` on the serving server itself (no host, no port)."""
    disp = display.encode("utf-8") if isinstance(display, str) else display
    disp = disp.replace(b"\t", b" ").replace(b"\r", b" ").replace(b"\n", b" ")
    return MenuItem(item_type, disp, selector, None, None)


def root_menu_lines(
    holes: Iterable[tuple[str, int, Iterable[Entry]]],
    *,
    latest: bool,
    atom_names: Iterable[str],
) -> list[MenuItem]:
    """The generated root menu: each hole's start menus, latest, Atom feeds.

    ``holes`` yields (host, port, start menus).  Local lines have no host
    field (``fill_host_port`` or ``render_map`` completes them).
    """
    lines = [info_line("gophermirror: mirrored gopher holes"), info_line("")]
    count = 0
    for host, port, starts in holes:
        shown = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        for entry in starts:
            selector = decode_for_humans(entry.selector)
            lines.append(local_link(entry, f"{shown} {selector}".rstrip(), MENU))
            count += 1
    if not count:
        lines.append(info_line("(nothing mirrored yet)"))
    if latest:
        lines.append(info_line(""))
        lines.append(generated_link(MENU, "Latest items", b"/" + LATEST_DIR.encode()))
    names = sorted(atom_names)
    if names:
        lines += [info_line(""), info_line("Atom feeds:")]
        for name in names:
            lines.append(generated_link(TEXT, name, f"/{ATOM_DIR}/{name}".encode()))
    return lines


def start_menus(
    entries: Iterable[Entry], read_body: Callable[[Entry], bytes | None]
) -> list[Entry]:
    """The menus of one hole a reader starts from (at most 20).

    The hole's root menu (selector empty or ``/``) if it is mirrored, then
    every menu no other mirrored menu of the hole links to (another start
    URL of the mirror); then, while some menu is still out of reach of
    those (a cycle nothing else links to), the one with the shortest
    selector.  ``'gone'`` menus are never added for their own sake.
    """
    menus = sorted(
        (e for e in entries if e.kind == "menu" and servable(e)),
        key=lambda e: (len(e.selector), e.selector),
    )
    by_key = {(e.host, e.port, e.selector): e for e in menus}
    links: dict[tuple[str, int, bytes], set[tuple[str, int, bytes]]] = {}
    linked: set[tuple[str, int, bytes]] = set()
    for menu in menus:
        here = (menu.host, menu.port, menu.selector)
        targets = links.setdefault(here, set())
        body = read_body(menu)
        for item in parse_menu(body or b"").items:
            if item.type != MENU or item.selector is None:
                continue
            try:
                url = url_for_item(item)
            except BadMenuLine:
                continue
            key = (url.host, url.port, url.selector)
            if key in by_key and key != here:
                targets.add(key)
                linked.add(key)
    starts = [e for e in menus if e.selector in (b"", b"/")][:1]
    starts += [
        e
        for e in menus
        if e not in starts and e.status != "gone" and (e.host, e.port, e.selector) not in linked
    ]
    reached: set[tuple[str, int, bytes]] = set()

    def reach(entry: Entry) -> None:
        todo = [(entry.host, entry.port, entry.selector)]
        while todo:
            key = todo.pop()
            if key not in reached:
                reached.add(key)
                todo.extend(links.get(key, ()))

    for entry in starts:
        reach(entry)
    for entry in menus:
        if len(starts) >= _MAX_START_MENUS:
            break
        key = (entry.host, entry.port, entry.selector)
        if key not in reached and (entry.status != "gone" or not starts):
            starts.append(entry)
            reach(entry)
    return starts[:_MAX_START_MENUS]


def atom_names(root: Path | str) -> list[str]:
    """The Atom files under ``ROOT/atom/`` that may be listed and served."""
    try:
        with os.scandir(os.path.join(root, ATOM_DIR)) as it:
            names = [e.name for e in it if e.is_file(follow_symlinks=False)]
    except OSError:
        return []
    return sorted(name for name in names if ATOM_NAME_RE.match(name))


def latest_exists(root: Path | str) -> bool:
    """Whether the generated ``latest`` menu is there."""
    return any(
        os.path.isfile(os.path.join(root, LATEST_DIR, name)) for name in (MENU_BODY_NAME, MAP_NAME)
    )


def _hole_starts(store: Store) -> Iterator[tuple[str, int, list[Entry]]]:
    def read(entry: Entry) -> bytes | None:
        try:
            return store.read_body(entry)
        except StoreError:
            return None

    for host, port in store.holes():
        yield host, port, start_menus(store.entries(host, port), read)


def write_root_map(
    store: Store,
    *,
    fmt: str = "default",
    advertise: tuple[str, int] | None = None,
    notes: MapNotes | None = None,
) -> None:
    """Write ``ROOT/gophermap``: a menu of the mirrored holes, latest and Atom feeds."""
    lines = root_menu_lines(
        _hole_starts(store), latest=latest_exists(store.root), atom_names=atom_names(store.root)
    )
    store.write_aux(ROOT_MAP, render_map(lines, None, fmt=fmt, advertise=advertise, notes=notes))


def write_generated_menu(
    store: Store,
    dirname: str,
    lines: Iterable[MenuLine],
    *,
    fmt: str = "default",
    advertise: tuple[str, int] | None = None,
    notes: MapNotes | None = None,
) -> None:
    """Write a menu the mirror makes itself (e.g. ``latest``) below ROOT.

    ``ROOT/<dirname>/.gophermirror-menu`` keeps the lines as given (links to
    mirrored items made with ``local_link``, host left out); the
    ``gophermap`` next to it is rendered in ``fmt``.  ``export`` and the
    built-in server work from the first, so re-exporting never piles up.
    """
    source = b"".join(format_menu_line(line) for line in lines)
    store.write_aux(f"{dirname}/{MENU_BODY_NAME}", source)
    data = convert_map(source, fmt=fmt, advertise=advertise, notes=notes)
    store.write_aux(f"{dirname}/{MAP_NAME}", data)


def generated_source(root: Path | str, dirname: str) -> bytes | None:
    """The lines of a generated menu: its ``.gophermirror-menu``, else its map."""
    for name in (MENU_BODY_NAME, MAP_NAME):
        data = read_inside(root, f"{dirname}/{name}")
        if data is not None:
            return data
    return None


def rewrite_generated_menu(
    store: Store,
    dirname: str,
    *,
    fmt: str = "default",
    advertise: tuple[str, int] | None = None,
    notes: MapNotes | None = None,
) -> bool:
    """Re-render ``ROOT/<dirname>/gophermap`` in ``fmt``; False if there is none.

    A map written without its ``.gophermirror-menu`` gets one first (the map
    as it is), so later exports start from the same lines.
    """
    data = read_inside(store.root, f"{dirname}/{MENU_BODY_NAME}")
    if data is None:
        data = read_inside(store.root, f"{dirname}/{MAP_NAME}")
        if data is None:
            return False
        store.write_aux(f"{dirname}/{MENU_BODY_NAME}", data)
    store.write_aux(
        f"{dirname}/{MAP_NAME}", convert_map(data, fmt=fmt, advertise=advertise, notes=notes)
    )
    return True


def convert_map(
    data: bytes,
    *,
    fmt: str,
    advertise: tuple[str, int] | None = None,
    notes: MapNotes | None = None,
) -> bytes:
    """Generated map lines (links to ``/...`` without host) in dialect ``fmt``."""
    return render_map(parse_menu(data).lines, None, fmt=fmt, advertise=advertise, notes=notes)


# --------------------------------------------------------------------------
# Reading below ROOT without leaving it
# --------------------------------------------------------------------------

MAX_GENERATED: Final = 16 << 20
"""Largest generated file (map, Atom document) read back."""


def inside_root(root_real: str, path: str) -> str | None:
    """The real path of ``path`` if it stays inside ``root_real`` (symlinks resolved).

    ``root_real`` must itself be a real path.  The store's own directory
    (``.gophermirror``) counts as outside.
    """
    real = os.path.realpath(path)
    try:
        if os.path.commonpath([root_real, real]) != root_real or real == root_real:
            return None
    except ValueError:
        return None
    rel = real[len(root_real) :].lstrip(os.sep)
    if rel.split(os.sep, 1)[0] == STATE_DIR:
        return None
    return real


def open_inside(root_real: str, path: str) -> int | None:
    """An fd open for reading on the regular file ``path`` inside ``root_real``, or None.

    Refuses symlinks that lead out, the store's state directory, and
    anything that is not a regular file (a FIFO would block the server).
    """
    real = inside_root(root_real, path)
    if real is None:
        return None
    try:
        fd = os.open(real, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            return None
    except OSError:
        os.close(fd)
        return None
    return fd


def read_inside(root: Path | str, relpath: str, limit: int = MAX_GENERATED) -> bytes | None:
    """The bytes of ``ROOT/relpath`` if it is a regular file inside ROOT, else None."""
    root_real = os.path.realpath(root)
    fd = open_inside(root_real, os.path.join(root_real, relpath))
    if fd is None:
        return None
    try:
        chunks: list[bytes] = []
        size = 0
        while chunk := os.read(fd, 1 << 20):
            size += len(chunk)
            if size > limit:
                return None
            chunks.append(chunk)
        return b"".join(chunks)
    except OSError:
        return None
    finally:
        os.close(fd)
