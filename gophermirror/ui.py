"""What the command line shows a person: progress, summaries, menus.

Owns: the rich progress bar on a terminal, plain log lines elsewhere,
rendering a menu for reading, and writing the one JSON document of
``--json``.  Must not touch: the network, the store (it is handed values).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, TYPE_CHECKING, Any

from .protocol import Menu, MenuItem, RawLine, describe, url_for_item

if TYPE_CHECKING:
    from .crawler import CrawlReport

_LABELS = {
    b"0": "TXT",
    b"1": "DIR",
    b"7": "ASK",
    b"8": "TEL",
    b"9": "BIN",
    b"g": "GIF",
    b"I": "IMG",
    b"h": "HTM",
    b"s": "SND",
    b"p": "PNG",
    b"d": "DOC",
    b"3": "ERR",
}


def render_menu(menu: Menu) -> str:
    """A menu as a person reads it: one line per item, links with their URL."""
    out = []
    for line in menu.lines:
        if isinstance(line, RawLine):
            if line.reason != "empty line":
                out.append(f"      ?? {line.data.decode('utf-8', 'replace')}")
            else:
                out.append("")
            continue
        out.append(_render_item(line))
    return "\n".join(out) + "\n"


def _render_item(item: MenuItem) -> str:
    text = item.text()
    if item.type == b"i":
        return f"      {text}"
    label = _LABELS.get(item.type, item.type.decode("latin-1") or "?")
    if item.is_url_link and item.selector is not None:
        target = item.selector.decode("utf-8", "replace").split(":", 1)[1]
    else:
        try:
            target = str(url_for_item(item))
        except Exception:
            target = "(bad link)"
    return f"[{label:>3}] {text}  <{target}>"


def menu_as_json(menu: Menu) -> list[dict[str, Any]]:
    """Menu items as JSON-ready dicts (bytes shown as text, lossless fields kept)."""
    items = []
    for line in menu.lines:
        if isinstance(line, RawLine):
            items.append({"raw": line.data.decode("utf-8", "replace"), "problem": line.reason})
            continue
        entry: dict[str, Any] = {
            "type": line.type.decode("latin-1"),
            "kind": describe(line.type),
            "display": line.text(),
            "selector": None if line.selector is None else line.selector.decode("utf-8", "replace"),
            "host": None if line.host is None else line.host.decode("latin-1"),
            "port": line.port,
        }
        if line.extra:
            entry["extra"] = [f.decode("latin-1") for f in line.extra]
        if not line.is_info:
            try:
                entry["url"] = str(url_for_item(line))
            except Exception:
                entry["url"] = None
        items.append(entry)
    return items


def write_json(document: object, stream: IO[str] | None = None) -> None:
    """The one JSON document on stdout."""
    out = stream or sys.stdout
    json.dump(document, out, indent=2, ensure_ascii=False, default=str)
    out.write("\n")
    out.flush()


def summary_lines(report: CrawlReport) -> list[str]:
    """The human summary of a mirror run."""
    lines = [
        f"menus fetched: {report.menus}",
        f"items: {report.new} new, {report.changed} changed, {report.unchanged} unchanged, "
        f"{report.gone} gone, {report.failed} failed",
        f"requests: {report.requests}, bytes: {report.bytes}, time: {report.elapsed:.2f} s",
    ]
    if report.bad_lines:
        lines.append(
            f"menu lines that cannot be followed: {report.bad_lines} (see --json warnings)"
        )
    if report.skipped_robots:
        lines.append(f"skipped by robots.txt: {report.skipped_robots}")
    if report.truncated:
        lines.append("item cap reached: the mirror is incomplete (raise [mirror] max_items)")
    for error in report.errors[:50]:
        lines.append(f"  failed: {error.url}: {error.error}: {error.message}")
    if len(report.errors) > 50:
        lines.append(f"  ... and {len(report.errors) - 50} more (see --json)")
    return lines


@contextmanager
def crawl_progress(*, quiet: bool, stream: IO[str] | None = None) -> Iterator[Any]:
    """A progress callback for the crawler: a rich bar on a terminal, log lines elsewhere."""
    err = stream or sys.stderr
    if quiet:
        yield None
        return
    if err.isatty():
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        progress = Progress(
            TextColumn("[bold]mirror[/]"),
            BarColumn(),
            TextColumn("{task.completed} items"),
            TextColumn("{task.fields[status]}"),
            TimeElapsedColumn(),
            console=Console(file=err),
            transient=True,
        )
        task = progress.add_task("mirror", total=None, status="")
        with progress:

            def update(report: CrawlReport, url: str, outcome: str) -> None:
                done = report.new + report.changed + report.unchanged + report.failed
                status = f"{report.new} new, {report.failed} failed"
                progress.update(task, completed=done, status=status)

            yield update
        return

    def log(report: CrawlReport, url: str, outcome: str) -> None:
        print(f"{outcome:9} {url}", file=err, flush=False)

    yield log
    err.flush()
