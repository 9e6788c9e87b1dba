"""Export: make a mirror servable by gophernicus, pygopherd or bucktooth.

Owns: ``export`` (re-write every menu's ``gophermap``, ``ROOT/gophermap``
and ``ROOT/latest/gophermap`` in one server's dialect), the report of what
that dialect had to change, and the advice on running that server so that
it serves the tree as faithfully as it can (docs/serving.md).
Must not touch: the stored bodies and the manifest rows (only maps are
written, through the store), the network.  The dialects themselves are
``maps.py``'s.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

import attrs

from . import maps
from .errors import ConfigError
from .store import Store

EXPORT_FORMATS: Final = ("gophernicus", "pygopherd", "bucktooth", "default")
"""Formats ``export`` writes; ``default`` restores the map ``mirror`` writes."""

GOPHERNICUS_TEXT_EXTENSIONS: Final = frozenset(
    ["txt", "pl", "py", "sh", "tcl", "c", "cpp", "h", "log", "conf", "php", "php3", "mbox"]
)
"""Extensions gophernicus 3.1.1 sends as text (types 0 and M: re-encoded, CRLF)."""

PYGOPHERD_HANDLERS: Final = (
    "handlers = [gophermap.BuckGophermapHandler, file.FileHandler, dir.DirHandler]"
)
"""pygopherd handlers that serve files unchanged (no mbox, Maildir or HTML rewriting)."""


@attrs.frozen
class ExportReport:
    """What ``export`` wrote and what the target server will still change."""

    root: str
    """The mirror root."""
    format: str
    """The dialect written."""
    menus: int
    """Menu maps written."""
    generated: tuple[str, ...]
    """Generated maps written (relative to ROOT): the root menu, ``latest``."""
    changes: tuple[tuple[str, int], ...]
    """(reason, lines) the dialect changed or the server will drop, most first."""
    advice: tuple[str, ...]
    """How to run the server on this tree (one line each)."""

    def as_dict(self) -> dict[str, object]:
        """The report as plain JSON-able values."""
        return {
            "root": self.root,
            "format": self.format,
            "menus": self.menus,
            "generated": list(self.generated),
            "changes": [{"reason": r, "lines": n} for r, n in self.changes],
            "advice": list(self.advice),
        }

    def summary(self) -> str:
        """A few lines for a person."""
        lines = [
            f"exported {self.menus} menus and {len(self.generated)} generated maps"
            f" of {self.root} for {self.format}"
        ]
        lines += [f"  {n:6d} lines: {reason}" for reason, n in self.changes]
        lines += [f"  run: {advice}" for advice in self.advice]
        return "\n".join(lines)


def export(
    root: Path | str,
    fmt: str,
    *,
    advertise: tuple[str, int] | None = None,
) -> ExportReport:
    """Re-write the maps of the mirror at ``root`` in the dialect of ``fmt``.

    ``advertise`` writes that host and port into local links (with pygopherd
    it also lets local links keep, or not, the origin's Gopher+ marker);
    without it the serving server fills in its own.  Raises ``StoreError``
    if ``root`` is not a store or a mirror run holds it.
    """
    if fmt not in EXPORT_FORMATS:
        raise ConfigError(f"unknown export format {fmt!r} (one of {', '.join(EXPORT_FORMATS)})")
    notes = maps.MapNotes()
    with Store.open(root, create=False) as store:
        menus = maps.write_all_maps(store, fmt=fmt, advertise=advertise, notes=notes)
        maps.write_root_map(store, fmt=fmt, advertise=advertise, notes=notes)
        generated = [maps.ROOT_MAP]
        if maps.rewrite_generated_menu(
            store, maps.LATEST_DIR, fmt=fmt, advertise=advertise, notes=notes
        ):
            generated.append(f"{maps.LATEST_DIR}/{maps.ROOT_MAP}")
        extensions = sorted(
            {ext for e in store.entries() if e.kind == "file" and (ext := _extension(e.path))}
            & GOPHERNICUS_TEXT_EXTENSIONS
        )
        store_root = str(store.root)
    changes = tuple(sorted(notes.counts.items(), key=lambda kv: (-kv[1], kv[0])))
    return ExportReport(
        store_root, fmt, menus, tuple(generated), changes, _advice(fmt, store_root, extensions)
    )


def _extension(path: str) -> str:
    name = path.rsplit("/", 1)[-1]
    stem, dot, ext = name.rpartition(".")
    return ext.lower() if dot and stem else ""


def _advice(fmt: str, root: str, extensions: list[str]) -> tuple[str, ...]:
    if fmt == "gophernicus":
        exact = " ".join(["-nc", "-t 9", *(f"-e {ext}=9" for ext in extensions)])
        return (
            f"gophernicus -r {root} -h HOST -p PORT -nf -nx (no footer, never execute maps)",
            f"add {exact} to send text files unaltered (no CRLF, no re-encoding)",
        )
    if fmt == "pygopherd":
        return (
            f"pygopherd.conf: root = {root}, servername and port = what clients use",
            f"pygopherd.conf: {PYGOPHERD_HANDLERS} (files sent as stored)",
        )
    if fmt == "bucktooth":
        return (f"bucktooth with its mountpoint at {root} (not tested: not in Debian)",)
    return (
        f"gophermirror serve {root} (byte for byte), or gophernicus/pygopherd with root {root}",
    )
