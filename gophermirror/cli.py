"""The ``gophermirror`` command: parse arguments, call the library, print.

Owns: argument parsing, exit statuses (0 all well; 1 items failed or damage
found; 2 a usage or config error) and turning typed errors into one clear
line on stderr.  Must not touch: protocol, crawling or storage logic; each
command is a few lines over a library function.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn

import trio

from .config import Config, load_config, parse_duration, parse_hostport
from .errors import ConfigError, GopherError
from .protocol import GopherURL, parse_url

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def _url(text: str) -> GopherURL:
    try:
        return parse_url(text)
    except GopherError as exc:
        raise argparse.ArgumentTypeError(exc.message) from None


def _duration(text: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _count(minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}")
        return value

    return parse


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError("must be 0 or more seconds")
    return value


def _hostport(text: str) -> tuple[str, int]:
    pair = parse_hostport(text)
    if pair is None:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, not {text!r}")
    return pair


def build_parser() -> argparse.ArgumentParser:
    """The whole command line, with help for every command."""
    parser = _Parser(
        prog="gophermirror",
        description="Mirror gopher holes byte for byte, re-serve them, follow their feeds.",
    )
    parser.add_argument("--version", action="version", version="gophermirror 0.1.0")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True

    def command(name: str, help: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help, description=help)
        sub.add_argument(
            "--config",
            metavar="FILE",
            help="config file (default: ./mirror.toml when present)",
        )
        return sub

    p = command("fetch", "Fetch one gopher URL and print it.")
    p.add_argument("url", type=_url, metavar="URL", help="gopher://host[:port]/TYPE/selector")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--raw", action="store_true", help="write the exact bytes the server sent")
    out.add_argument("--json", action="store_true", help="one JSON document (menus: every item)")
    p.set_defaults(run=_fetch)

    p = command("mirror", "Mirror gopher holes into a local store.")
    p.add_argument(
        "urls",
        type=_url,
        nargs="*",
        metavar="URL",
        help="start URLs (default: [mirror] urls and the feeds of the config)",
    )
    p.add_argument(
        "--root", type=Path, metavar="DIR", help="the store (default: root of the config, ./mirror)"
    )
    p.add_argument(
        "--depth", type=_count(0), metavar="N", help="menu levels to follow below a start menu"
    )
    p.add_argument(
        "--concurrency",
        type=_count(1),
        metavar="N",
        help="connections at once to one host (default 2)",
    )
    p.add_argument(
        "--delay",
        type=_seconds,
        metavar="SECONDS",
        help="least seconds between two requests to one host (0 allowed; default 0.2)",
    )
    p.add_argument("--refresh", action="store_true", help="download stored items again")
    p.add_argument(
        "--refresh-older-than",
        type=_duration,
        metavar="AGE",
        help="download items fetched longer ago than AGE (90s, 15m, 2h, 7d)",
    )
    p.add_argument(
        "--prune",
        action="store_true",
        help="delete items gone from the origin (default: keep them, marked gone)",
    )
    p.add_argument(
        "--include",
        action="append",
        metavar="REGEX",
        help="only selectors matching REGEX (repeatable)",
    )
    p.add_argument(
        "--exclude",
        action="append",
        metavar="REGEX",
        help="leave out selectors matching REGEX (repeatable)",
    )
    p.add_argument(
        "--follow-hosts", action="store_true", default=None, help="follow links to other hosts"
    )
    p.add_argument("--ignore-robots", action="store_true", help="do not read robots.txt")
    p.add_argument(
        "--no-fsync", action="store_true", help="skip fsync (fast; unsafe on power loss)"
    )
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.add_argument("--json", action="store_true", help="write the summary as one JSON document")
    p.set_defaults(run=_mirror)

    p = command("verify", "Re-hash every stored file against the manifest.")
    p.add_argument(
        "root", type=Path, nargs="?", metavar="ROOT", help="the store (default: from the config)"
    )
    p.add_argument("--json", action="store_true", help="write the report as one JSON document")
    p.set_defaults(run=_verify)

    p = command("serve", "Serve a mirror with the built-in gopher server.")
    p.add_argument(
        "root", type=Path, nargs="?", metavar="ROOT", help="the store (default: from the config)"
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument(
        "--port", type=_count(0), default=7070, help="port to bind (default 7070; 0 picks one)"
    )
    p.add_argument(
        "--advertise",
        type=_hostport,
        metavar="HOST:PORT",
        help="host:port written into menus (default: the bound address)",
    )
    p.add_argument("--quiet", action="store_true", help="no request log")
    p.set_defaults(run=_serve)

    p = command("export", "Write gophermaps so a standard server serves the mirror.")
    p.add_argument(
        "root", type=Path, nargs="?", metavar="ROOT", help="the store (default: from the config)"
    )
    p.add_argument(
        "--format",
        required=True,
        choices=["gophernicus", "pygopherd", "bucktooth", "default"],
        help="the server's gophermap dialect (default: the maps `mirror` writes, for both)",
    )
    p.add_argument(
        "--advertise",
        type=_hostport,
        metavar="HOST:PORT",
        help="write this host:port into local links (default: the serving server fills it in)",
    )
    p.add_argument("--json", action="store_true", help="write the report as one JSON document")
    p.set_defaults(run=_export)

    feed = commands.add_parser(
        "feed", help="Follow gopher feeds.", description="Follow gopher feeds."
    )
    feed_commands = feed.add_subparsers(dest="feed_command", metavar="ACTION", parser_class=_Parser)
    feed_commands.required = True

    def feed_command(name: str, help: str) -> argparse.ArgumentParser:
        sub = feed_commands.add_parser(name, help=help, description=help)
        sub.add_argument(
            "--config", metavar="FILE", help="config file (default: ./mirror.toml when present)"
        )
        sub.add_argument(
            "--root", type=Path, metavar="DIR", help="the store (default: root of the config)"
        )
        sub.add_argument("--json", action="store_true", help="one JSON document on stdout")
        return sub

    p = feed_command("update", "Check feeds now and download new articles.")
    p.add_argument("names", nargs="*", metavar="NAME", help="feeds to check (default: all)")
    p.add_argument("--quiet", action="store_true", help="print nothing but errors")
    p.set_defaults(run=_feed_update)
    p = feed_command("list", "List articles, newest first across feeds.")
    p.add_argument("--feed", metavar="NAME", help="only this feed")
    p.add_argument(
        "--since", metavar="DATE", help="only articles dated on or after DATE (YYYY-MM-DD)"
    )
    p.set_defaults(run=_feed_list)
    p = feed_command("read", "Print an article as stored.")
    p.add_argument(
        "target", metavar="ID|URL", help="an id from `feed list` or the article's gopher URL"
    )
    p.set_defaults(run=_feed_read)
    p = feed_command("watch", "Keep checking feeds, each on its own interval.")
    p.add_argument("--quiet", action="store_true", help="print nothing but errors")
    p.set_defaults(run=_feed_watch)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config)
        status: int = args.run(args, config)
        return status
    except ConfigError as exc:
        print(f"gophermirror: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except GopherError as exc:
        print(f"gophermirror: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("gophermirror: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return EXIT_OK


def _root(args: argparse.Namespace, config: Config, attr: str = "root") -> Path:
    value = getattr(args, attr, None)
    return Path(value) if value is not None else config.root


# --- commands --------------------------------------------------------------


def _fetch(args: argparse.Namespace, config: Config) -> int:
    from . import ui
    from .client import fetch, server_error
    from .protocol import MENU, parse_menu

    limits = config.politeness.limits()
    if args.raw:
        # The exact bytes, error replies included (as curl does); the exit
        # status still says whether the server answered with an error item.
        result = trio.run(lambda: fetch(args.url, limits, check_error=False))
        sys.stdout.buffer.write(result.raw)
        sys.stdout.buffer.flush()
        error = server_error(result)
        if error is not None:
            print(f"gophermirror: {error}", file=sys.stderr)
            return EXIT_FAILED
        return EXIT_OK
    result = trio.run(fetch, args.url, limits)
    if args.json:
        import hashlib

        document: dict[str, object] = {
            "url": str(result.url),
            "type": result.item_type.decode("latin-1"),
            "size": len(result.body),
            "terminator": result.terminator.decode("latin-1"),
            "sha256": hashlib.sha256(result.body).hexdigest(),
        }
        if result.item_type == MENU:
            document["items"] = ui.menu_as_json(parse_menu(result.body, url=result.url))
        else:
            try:
                document["text"] = result.body.decode("utf-8")
            except UnicodeDecodeError:
                document["text"] = None
        ui.write_json(document)
        return EXIT_OK
    if result.item_type == MENU:
        sys.stdout.write(ui.render_menu(parse_menu(result.body, url=result.url)))
        sys.stdout.flush()
    else:
        sys.stdout.buffer.write(result.body)
        sys.stdout.buffer.flush()
    return EXIT_OK


def _mirror(args: argparse.Namespace, config: Config) -> int:
    from . import ui
    from .mirror import mirror, settings_from_config

    starts = list(args.urls) or list(config.mirror.urls) or [f.url for f in config.feeds]
    if not starts:
        raise ConfigError(
            "nothing to mirror: give a URL, or [mirror] urls or [[feed]] in the config",
            config.source,
        )
    settings = settings_from_config(
        config,
        depth=args.depth,
        concurrency=args.concurrency,
        delay=args.delay,
        refresh=args.refresh or None,
        refresh_older_than=args.refresh_older_than,
        prune=args.prune or None,
        include=tuple(args.include) if args.include else None,
        exclude=tuple(args.exclude) if args.exclude else None,
        follow_hosts=args.follow_hosts,
        robots=False if args.ignore_robots else None,
    )
    root = _root(args, config)
    with ui.crawl_progress(quiet=args.quiet or args.json) as progress:
        report = trio.run(
            lambda: mirror(root, starts, settings, durable=not args.no_fsync, on_progress=progress)
        )
    if args.json:
        document = report.as_dict()
        document["root"] = str(root)
        ui.write_json(document)
    elif not args.quiet:
        for line in ui.summary_lines(report):
            print(line, file=sys.stderr)
    return EXIT_OK if report.ok else EXIT_FAILED


def _verify(args: argparse.Namespace, config: Config) -> int:
    from . import ui
    from .store import Store

    root = _root(args, config)
    if not (root / ".gophermirror").is_dir():
        raise ConfigError(f"{root} is not a gophermirror store (no .gophermirror/)")
    with Store.open(root, create=False) as store:
        report = store.verify()
    if args.json:
        ui.write_json(
            {
                "root": str(root),
                "ok": not report.problems,
                "checked": report.checked,
                "problems": [
                    {"path": p.path, "url": p.url, "damage": p.kind, "detail": p.detail}
                    for p in report.problems
                ],
            }
        )
    else:
        for problem in report.problems:
            print(f"{problem.kind}: {problem.path} ({problem.url}): {problem.detail}")
        print(f"checked {report.checked} items: {len(report.problems)} problems", file=sys.stderr)
    return EXIT_OK if not report.problems else EXIT_FAILED


def _serve(args: argparse.Namespace, config: Config) -> int:
    from .serve import serve

    root = _root(args, config)
    if not (root / ".gophermirror").is_dir():
        raise ConfigError(f"{root} is not a gophermirror store (no .gophermirror/)")
    trio.run(
        lambda: serve(
            root, host=args.host, port=args.port, advertise=args.advertise, quiet=args.quiet
        )
    )
    return EXIT_OK


def _export(args: argparse.Namespace, config: Config) -> int:
    from . import ui
    from .export import export

    root = _root(args, config)
    if not (root / ".gophermirror").is_dir():
        raise ConfigError(f"{root} is not a gophermirror store (no .gophermirror/)")
    report = export(root, args.format, advertise=args.advertise or config.advertise)
    if args.json:
        ui.write_json(report.as_dict())
    else:
        print(report.summary())
    return EXIT_OK


def _feed_update(args: argparse.Namespace, config: Config) -> int:
    from .feed_cli import feed_update

    return feed_update(args, config)


def _feed_list(args: argparse.Namespace, config: Config) -> int:
    from .feed_cli import feed_list

    return feed_list(args, config)


def _feed_read(args: argparse.Namespace, config: Config) -> int:
    from .feed_cli import feed_read

    return feed_read(args, config)


def _feed_watch(args: argparse.Namespace, config: Config) -> int:
    from .feed_cli import feed_watch

    return feed_watch(args, config)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
