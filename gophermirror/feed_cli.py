"""The ``gophermirror feed ...`` commands: call the feed library, print.

Owns: what ``feed update``, ``feed list``, ``feed read`` and ``feed watch``
print (text lines or JSON) and their exit statuses (0 all well, 1 a feed or
an article failed; usage and config errors are raised as ``ConfigError``,
which cli.py turns into status 2).  Must not touch: feed logic (feed.py),
argument definitions (cli.py).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

import trio

from . import ui
from .config import Config
from .feed import (
    Article,
    FeedUpdate,
    WatchCheck,
    find_article,
    list_articles,
    parse_since,
    read_article,
    select_feeds,
    update_feeds,
    watch_until_signalled,
)
from .protocol import decode_for_humans

EXIT_OK, EXIT_FAILED = 0, 1


def _root(args: argparse.Namespace, config: Config) -> Path:
    value = getattr(args, "root", None)
    return Path(value) if value is not None else config.root


def new_line(article: Article) -> str:
    """``NEW  <date>  <feed>  <title>``."""
    return f"NEW  {article.date_label:<10}  {article.feed}  {article.display_title}"


def list_line(article: Article) -> str:
    """One line of ``feed list``: id, date, feed, title, authors, origin URL."""
    by = f" — {', '.join(article.authors)}" if article.authors else ""
    gone = "" if article.listed else " [no longer listed]"
    return (
        f"{article.id:>6}  {article.date_label:<10}  {article.feed}  "
        f"{article.display_title}{by}{gone}  <{article.url}>"
    )


def _problems(update: FeedUpdate) -> list[str]:
    lines = [f"gophermirror: feed {update.name}: {update.error}"] if update.error else []
    lines += [f"gophermirror: feed {update.name}: {w}" for w in update.warnings]
    return lines


def _summary(update: FeedUpdate) -> str:
    if not update.ok:
        return f"{update.name}: failed"
    waiting = f", {update.waiting} not downloaded yet" if update.waiting else ""
    return f"{update.name}: {len(update.new)} new, {update.listed} listed{waiting}"


def feed_update(args: argparse.Namespace, config: Config) -> int:
    """``feed update [NAME...]``: check now, print what is new."""
    root = _root(args, config)
    names: Sequence[str] = args.names or ()
    select_feeds(config, names)  # unknown names: ConfigError before any I/O
    results = trio.run(lambda: update_feeds(root, config, names))
    if args.json:
        ui.write_json(
            {
                "ok": all(r.complete for r in results),
                "root": str(root),
                "new": sum(len(r.new) for r in results),
                "feeds": [r.as_json() for r in results],
            }
        )
    else:
        for result in results:
            if not args.quiet:
                for article in result.new:
                    print(new_line(article))
        sys.stdout.flush()
        for result in results:
            for line in _problems(result):
                print(line, file=sys.stderr)
            if not args.quiet:
                print(_summary(result), file=sys.stderr)
    return EXIT_OK if all(r.complete for r in results) else EXIT_FAILED


def feed_list(args: argparse.Namespace, config: Config) -> int:
    """``feed list [--feed NAME] [--since DATE]``: newest first across feeds."""
    since = parse_since(args.since) if args.since else None
    articles = list_articles(_root(args, config), config, feed=args.feed, since=since)
    if args.json:
        ui.write_json({"count": len(articles), "articles": [a.as_json() for a in articles]})
        return EXIT_OK
    for article in articles:
        print(list_line(article))
    if not articles:
        print("gophermirror: no articles yet (run `gophermirror feed update`)", file=sys.stderr)
    return EXIT_OK


def feed_read(args: argparse.Namespace, config: Config) -> int:
    """``feed read ID|URL``: the article exactly as stored (or JSON with its text)."""
    root = _root(args, config)
    article = find_article(root, args.target)
    body = read_article(root, article)
    if args.json:
        document = article.as_json()
        document["text"] = decode_for_humans(body)
        ui.write_json(document)
        return EXIT_OK
    sys.stdout.buffer.write(body)
    sys.stdout.buffer.flush()
    return EXIT_OK


def _delay_text(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def feed_watch(args: argparse.Namespace, config: Config) -> int:
    """``feed watch``: check each feed on its interval until Ctrl-C or SIGTERM."""
    root = _root(args, config)
    feeds = select_feeds(config)

    def on_check(check: WatchCheck) -> None:
        update = check.update
        if args.json:
            document = update.as_json()
            document["failures"] = check.failures
            document["next_check_in"] = round(check.delay, 3)
            print(json.dumps(document, ensure_ascii=False, default=str), flush=True)
            return
        if not args.quiet:
            for article in update.new:
                print(new_line(article))
            sys.stdout.flush()
        for line in _problems(update):
            if not update.ok and line.endswith(f": {update.error}"):
                times = "once" if check.failures == 1 else f"{check.failures} times in a row"
                line += f" (failed {times}; next try in {_delay_text(check.delay)})"
            print(line, file=sys.stderr)
        sys.stderr.flush()

    if not args.quiet and not args.json:
        names = ", ".join(f.name for f in feeds)
        print(f"gophermirror: watching {names} (Ctrl-C to stop)", file=sys.stderr, flush=True)
    caught = trio.run(lambda: watch_until_signalled(root, config, on_check=on_check))
    if not args.quiet and not args.json and caught is not None:
        print(f"gophermirror: stopped ({signal.Signals(caught).name})", file=sys.stderr)
    return EXIT_OK
