"""``make demo``: the whole product on loopback, offline, in one command.

Owns: nothing but the demonstration.  It starts the bundled sample hole
(``testing.sample_hole``: a feed of articles in magical.fish's format) on
127.0.0.1, mirrors it into ``--root``, serves the mirror with the built-in
server, fetches the mirror's root menu and one article with the project's
own client, checks the article is the origin's bytes, prints both, and
stops everything.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import trio

from . import ui
from .client import fetch
from .crawler import CrawlSettings
from .mirror import mirror
from .protocol import GopherURL, parse_menu
from .serve import serve
from .testing import FEED_SELECTOR, MemoryHole, sample_hole, serve_hole


async def demo(root: Path, articles: int) -> int:
    """Run the demo; returns an exit status."""
    hole = sample_hole(articles)
    with trio.fail_after(60):
        return await _demo(hole, root)


async def _demo(hole: MemoryHole, root: Path) -> int:
    async with trio.open_nursery() as nursery:
        origin_port = await nursery.start(serve_hole, hole)
        start = GopherURL("127.0.0.1", origin_port, b"1", b"")
        print(f"1. sample hole serving on gopher://127.0.0.1:{origin_port}/")
        report = await mirror(root, [start], CrawlSettings(delay=0.0, concurrency=4), durable=True)
        print(f"2. mirrored into {root}/: " + "; ".join(ui.summary_lines(report)[:2]))
        mirror_port = await nursery.start(
            lambda task_status: serve(root, port=0, quiet=True, task_status=task_status)
        )
        base = f"gopher://127.0.0.1:{mirror_port}"
        print(f"3. mirror serving on {base}/\n")
        menu = await fetch(f"{base}/1/")
        print(f"--- {base}/1/ " + "-" * 20)
        print(ui.render_menu(parse_menu(menu.body)))
        feed = await fetch(f"{base}/1{FEED_SELECTOR.decode()}")
        print(f"--- {base}/1{FEED_SELECTOR.decode()} " + "-" * 20)
        print(ui.render_menu(parse_menu(feed.body)))
        first = next(
            item for item in parse_menu(feed.body).items if item.type == b"0" and item.selector
        )
        assert first.selector is not None
        article = await fetch(f"{base}/0{first.selector.decode()}")
        print(f"--- {base}/0{first.selector.decode()} " + "-" * 20)
        sys.stdout.flush()
        sys.stdout.buffer.write(article.body + b"\n")
        same = article.raw == hole.reply(first.selector)
        print(f"\n4. article from the mirror equals the origin's bytes: {same}")
        nursery.cancel_scope.cancel()
    return 0 if same and report.ok else 1


def main(argv: list[str] | None = None) -> int:
    """``python -m gophermirror.demo [--root DIR] [--articles N]``."""
    parser = argparse.ArgumentParser(prog="gophermirror.demo", description=__doc__)
    parser.add_argument("--root", type=Path, default=Path("demo-mirror"))
    parser.add_argument("--articles", type=int, default=12)
    parser.add_argument("--keep", action="store_true", help="keep an existing mirror (update it)")
    args = parser.parse_args(argv)
    if args.root.exists() and not args.keep:
        shutil.rmtree(args.root)
    return trio.run(demo, args.root, args.articles)


if __name__ == "__main__":
    sys.exit(main())
