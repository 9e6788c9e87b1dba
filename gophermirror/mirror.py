"""Mirroring as a whole: crawl into a store and keep it servable.

Owns: ``mirror()``, the one function behind ``gophermirror mirror`` (and
used by the feed layer): open the store, crawl, write each menu's gophermap
as soon as it is stored (so an interrupted mirror can already be browsed),
rewrite them all once the run knows what it holds, and close durably.
Must not touch: argument parsing and printing (cli.py and ui.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from . import maps
from .config import Config
from .crawler import CrawlReport, CrawlSettings, ProgressHook, crawl
from .protocol import GopherURL
from .store import Entry, Store


def settings_from_config(config: Config, **overrides: object) -> CrawlSettings:
    """Crawl settings from ``mirror.toml``, with command-line overrides (None: keep)."""
    pol = config.politeness
    mir = config.mirror
    values: dict[str, object] = {
        "depth": mir.depth,
        "include": mir.include,
        "exclude": mir.exclude,
        "follow_hosts": mir.follow_hosts,
        "concurrency": pol.concurrency,
        "delay": pol.delay,
        "global_concurrency": pol.global_concurrency,
        "limits": pol.limits(),
        "robots": pol.robots,
        "retries": pol.retries,
        "max_items": mir.max_items,
        "max_selector": mir.max_selector,
    }
    for key, value in overrides.items():
        if value is not None:
            values[key] = value
    return CrawlSettings(**values)  # type: ignore[arg-type]


async def mirror(
    root: Path | str,
    starts: Sequence[GopherURL],
    settings: CrawlSettings,
    *,
    durable: bool = True,
    on_progress: ProgressHook | None = None,
) -> CrawlReport:
    """Mirror ``starts`` into the store at ``root`` and leave it servable.

    The gophermaps of the menus this run fetched are written once the run
    ends, when the items they link to are in (a link to an item the mirror
    does not hold keeps pointing at the origin); an unchanged menu whose
    links were all stored already keeps its map, so an update run of an
    unchanged hole writes nothing but the manifest.  Writing each map when its
    menu arrives as well would cost a fifth of a first run; a run that is
    killed leaves the new menus of that run without a map, which standard
    servers then list as directories, the built-in server does not need
    (it renders menus from the manifest), and the next run writes.
    """
    stale: list[tuple[str, int, bytes]] = []

    def on_menu(store: Store, entry: Entry, may_have_changed: bool) -> None:
        if may_have_changed or not (store.root / maps.map_relpath(entry)).is_file():
            stale.append((entry.host, entry.port, entry.selector))

    with Store.open(Path(root), durable=durable) as store:
        report = await crawl(store, starts, settings, on_menu=on_menu, on_progress=on_progress)
        store.commit()
        for host, port, selector in stale:
            entry = store.get(host, port, selector, "menu")
            if entry is not None:
                maps.write_gophermap(store, entry)
        if stale or report.gone or not (store.root / maps.ROOT_MAP).is_file():
            maps.write_root_map(store)
    return report
