"""Mirroring a hostile origin: every broken server ends in bounded time and memory.

Each test serves ``tests.hostile.origin.HostileOrigin`` on loopback with one
case (or all of them) beside a normal part, and runs ``mirror`` in a child
process (``tests.hostile.child``) with small limits, so that its peak RSS is
its own.  Then it checks what every case must leave behind:

- the crawl finished within a bound derived from the limits;
- the failure is in the report with its URL (errors, or warnings for menu lines);
- the normal part (and every item the case serves properly) is stored byte-exact;
- nothing was created outside ROOT, and nothing inside ROOT leads out of it;
- peak memory stayed under ``MAX_RSS``;
- ``Store.verify()`` finds no problem at all.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import pytest
import trio

from gophermirror.store import Store
from tests.hostile import origin as o
from tests.hostile.child import crawl_in_child
from tests.hostile.origin import ALL_AT_ONCE, Case, HostileOrigin, serve_origin

HOST = "127.0.0.1"
MiB = 1 << 20
MAX_RSS_KIB = 200 * 1024
"""Peak memory bound for any case (a 9 MB menu, a 16 MiB endless body included)."""
IDLE, TOTAL = 0.5, 2.0
"""The limits every run uses (a slow-loris byte comes every IDLE / 2 seconds)."""


@attrs.frozen
class Outcome:
    """One hostile crawl: what the child reported and what it left on disk."""

    origin: HostileOrigin
    root: Path
    report: dict[str, Any]

    @property
    def errors(self) -> dict[str, str]:
        """URL -> error class name."""
        return {e["url"]: e["error"] for e in self.report["errors"]}

    def url(self, item_type: bytes, selector: bytes) -> str:
        """The URL the crawler reports for an item of this origin."""
        from gophermirror.protocol import GopherURL

        return str(GopherURL(HOST, self.origin.port, item_type, selector))


def tree(top: Path) -> set[Path]:
    """Every path below ``top`` (symlinks not followed)."""
    found = set()
    for dirpath, dirnames, filenames in os.walk(top):
        for name in dirnames + filenames:
            found.add(Path(dirpath) / name)
    return found


async def hostile_crawl(
    tmp_path: Path,
    cases: frozenset[Case],
    *,
    max_size: int = MiB,
    max_items: int = 1_000_000,
    retries: int = 0,
    time_limit: float = 60,
) -> Outcome:
    """Serve a hostile origin with ``cases``, mirror it in a child, check the common rules."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_bytes(b"outside the mirror\n")
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    root = tmp_path / "m"
    before = tree(tmp_path)
    origin = HostileOrigin(
        cases=cases, outside=str(outside), loris_interval=IDLE / 2, oversize=max_size + 1
    )
    with trio.fail_after(time_limit):
        async with trio.open_nursery() as nursery:
            port = await nursery.start(serve_origin, origin)
            report = await crawl_in_child(
                root,
                f"gopher://{HOST}:{port}/1",
                cwd=cwd,
                idle=IDLE,
                total=TOTAL,
                max_size=max_size,
                max_items=max_items,
                retries=retries,
            )
            nursery.cancel_scope.cancel()
    outcome = Outcome(origin, root, report)
    assert seconds(outcome) < 30
    check_inside(tmp_path, root, before)
    check_stored(outcome)
    assert report["peak_rss_kib"] < MAX_RSS_KIB, report["peak_rss_kib"]
    return outcome


def check_inside(tmp_path: Path, root: Path, before: set[Path]) -> None:
    """Everything the crawl created is under ROOT; nothing under ROOT leads out."""
    created = tree(tmp_path) - before
    assert created, "the crawl wrote nothing"
    strays = sorted(p for p in created if not p.is_relative_to(root))
    assert strays == [], strays
    real_root = os.path.realpath(root)
    for path in created:
        assert not path.is_symlink(), path
        assert os.path.commonpath([os.path.realpath(path), real_root]) == real_root, path


def check_stored(outcome: Outcome) -> None:
    """Every item the origin serves properly is stored byte-exact; verify is clean."""
    expected = outcome.origin.expected()
    assert expected.keys() >= outcome.origin.normal().keys()
    with Store.open(outcome.root, create=False) as store:
        for (item_type, selector), reply in expected.items():
            kind = "menu" if item_type == b"1" else "file"
            entry = store.get(HOST, outcome.origin.port, selector, kind)
            assert entry is not None and entry.status == "ok", (selector, entry)
            assert store.read_body(entry) + entry.terminator == reply, selector
            assert entry.item_type == item_type
        verify = store.verify()
        assert verify.problems == (), verify.problems
        assert verify.checked == verify.ok > 0


def seconds(outcome: Outcome) -> float:
    """How long the mirror took in the child (crawl, maps, commit)."""
    wall: float = outcome.report["wall_seconds"]
    return wall


# --------------------------------------------------------------------------
# One case at a time
# --------------------------------------------------------------------------


def fails_with(item_type: bytes, selector: bytes, error: str) -> Callable[[Outcome], None]:
    """The item is reported failed with ``error`` and its URL, and has no body."""

    def check(outcome: Outcome) -> None:
        assert outcome.errors.get(outcome.url(item_type, selector)) == error, outcome.errors
        assert outcome.report["items"]["failed"] == 1
        with Store.open(outcome.root, create=False) as store:
            kind = "menu" if item_type == b"1" else "file"
            entry = store.get(HOST, outcome.origin.port, selector, kind)
            assert entry is not None and entry.status == "failed" and not entry.sha256
            assert entry.error is not None and entry.error.startswith(error)

    return check


def slower_than(low: float, high: float) -> Callable[[Outcome], None]:
    def check(outcome: Outcome) -> None:
        assert low <= seconds(outcome) < high, seconds(outcome)

    return check


def linger(outcome: Outcome) -> None:
    # The menu and the text end with their dot line: complete at the idle timeout.
    # The binary item has no end marker: it fails.  Both pauses run in parallel.
    assert IDLE <= seconds(outcome) < 2 * IDLE + 3


def malformed(outcome: Outcome) -> None:
    menu_url = outcome.url(b"1", o.MALFORMED)
    warnings = [w for w in outcome.report["warnings"] if w["url"] == menu_url]
    lines = {int(w["message"].split()[2].rstrip(":")) for w in warnings}
    # no tabs, NUL, port 99999, -70, words, empty host, two fields, only tabs, TAB type, NULs
    assert lines == {1, 2, 5, 6, 7, 8, 9, 10, 11, 13}, warnings
    assert outcome.report["bad_lines"] == len(warnings)
    assert any("bad port b'99999'" in w["message"] for w in warnings)
    assert any("NUL" in w["message"] for w in warnings)
    # The selector with a CR cannot be sent: an error with its URL, not a crash.
    assert outcome.errors == {outcome.url(b"0", b"/malformed/c\rr"): "BadSelector"}
    bad = {b"/malformed/p%d" % n for n in range(1, 6)} | {b"/malformed/nul"}
    assert not bad & set(outcome.origin.requests)
    assert not [s for s in outcome.origin.requests if s.startswith(b"/malformed/ss")]


def huge_menu(outcome: Outcome) -> None:
    assert outcome.report["ok"] and outcome.report["bad_lines"] == 0
    huge = [s for s in outcome.origin.requests if s.startswith(o.HUGE + b"/")]
    assert sorted(huge) == sorted({o.HUGE + b"/%d" % n for n in range(o.HUGE_ITEMS)})
    assert seconds(outcome) < 30


def trap(outcome: Outcome) -> None:
    assert outcome.report["truncated"]
    asked = outcome.origin.trap_selectors()
    assert 100 < len(asked) <= 300 and len(asked) == len(set(asked))


def traversal(outcome: Outcome) -> None:
    assert outcome.report["ok"], outcome.report["errors"]
    asked = set(outcome.origin.requests)
    assert set(outcome.origin.traversal_selectors()) <= asked
    assert b"../../escape-menu/../x" in asked
    assert not Path(outcome.origin.outside, "pwned-absolute").exists()
    assert not [w for w in outcome.report["warnings"] if "NUL" not in w["message"]]
    # The generated gophermaps are the mirror's own, not the origin's "PWNED" items.
    for gophermap in outcome.root.rglob("gophermap"):
        assert not gophermap.read_bytes().startswith(b"PWNED"), gophermap


def errors(outcome: Outcome) -> None:
    assert outcome.errors == {
        outcome.url(b"0", b"/errors/pygopherd"): "ServerError",
        outcome.url(b"1", b"/errors/gone-menu"): "ServerError",
    }


def robots(outcome: Outcome) -> None:
    assert outcome.report["ok"] and outcome.report["skipped_robots"] == 1
    assert not [s for s in outcome.origin.requests if s.startswith(o.PRIVATE)]
    with Store.open(outcome.root, create=False) as store:
        assert store.get(HOST, outcome.origin.port, o.PRIVATE, "menu") is None


def host_files(outcome: Outcome) -> None:
    # robots.txt drips (timeout after TOTAL), caps.txt never ends (capped at 512 KiB).
    assert outcome.report["ok"]
    assert {w["url"]: w["error"] for w in outcome.report["warnings"]} == {
        outcome.url(b"0", o.ROBOTS): "GopherTimeout",
        outcome.url(b"0", o.CAPS): "TooLarge",
    }
    assert TOTAL <= seconds(outcome) < TOTAL + 3


def ok(outcome: Outcome) -> None:
    assert outcome.report["ok"], outcome.report["errors"]
    assert outcome.report["bad_lines"] == 0


CHECKS: dict[Case, list[Callable[[Outcome], None]]] = {
    Case.SILENT: [fails_with(b"0", o.SILENT, "GopherTimeout"), slower_than(IDLE, IDLE + 3)],
    Case.DEAF: [fails_with(b"0", o.DEAF, "GopherTimeout"), slower_than(IDLE, IDLE + 3)],
    Case.LORIS: [fails_with(b"0", o.LORIS, "GopherTimeout"), slower_than(TOTAL, TOTAL + 3)],
    Case.ENDLESS: [fails_with(b"9", o.ENDLESS, "TooLarge"), slower_than(0, 5)],
    Case.OVERSIZE: [fails_with(b"9", o.OVERSIZE, "TooLarge"), slower_than(0, 5)],
    Case.RESET: [fails_with(b"0", o.RESET, "ConnectionReset"), slower_than(0, 5)],
    Case.LINGER: [fails_with(b"9", o.LINGER + b"/blob.bin", "GopherTimeout"), linger],
    Case.MALFORMED: [malformed],
    Case.HUGE_MENU: [huge_menu],
    Case.TRAP: [trap, slower_than(0, 20)],
    Case.TRAVERSAL: [traversal],
    Case.ERRORS: [errors],
    Case.MENU_AND_TEXT: [ok],
    Case.LATIN1: [ok],
    Case.ROBOTS: [robots],
    Case.HOST_FILES: [host_files],
}

OPTIONS: dict[Case, dict[str, Any]] = {
    Case.HUGE_MENU: {"max_size": 16 * MiB},
    Case.TRAP: {"max_items": 300},
}


@pytest.mark.parametrize("case", list(Case), ids=[c.value for c in Case])
async def test_hostile_case(tmp_path: Path, case: Case) -> None:
    outcome = await hostile_crawl(tmp_path, frozenset({case}), **OPTIONS.get(case, {}))
    for check in CHECKS[case]:
        check(outcome)


async def test_every_case_in_one_hole(tmp_path: Path) -> None:
    """All at once, with the default retry: the normal part still comes through whole."""
    outcome = await hostile_crawl(
        tmp_path, ALL_AT_ONCE, max_size=16 * MiB, max_items=1000, retries=1
    )
    report = outcome.report
    failed = {
        (b"0", o.SILENT): "GopherTimeout",
        (b"0", o.DEAF): "GopherTimeout",
        (b"0", o.LORIS): "GopherTimeout",
        (b"9", o.ENDLESS): "TooLarge",
        (b"9", o.OVERSIZE): "TooLarge",
        (b"0", o.RESET): "ConnectionReset",
        (b"9", o.LINGER + b"/blob.bin"): "GopherTimeout",
        (b"0", b"/malformed/c\rr"): "BadSelector",
        (b"0", b"/errors/pygopherd"): "ServerError",
        (b"1", b"/errors/gone-menu"): "ServerError",
    }
    assert outcome.errors == {outcome.url(t, s): e for (t, s), e in failed.items()}
    assert report["items"]["failed"] == len(failed)
    # Network errors are tried twice, the others once.
    for selector in (o.SILENT, o.DEAF, o.LORIS, o.RESET, o.LINGER + b"/blob.bin"):
        assert outcome.origin.count(selector) == 2, selector
    for selector in (o.ENDLESS, o.OVERSIZE, b"/errors/pygopherd"):
        assert outcome.origin.count(selector) == 1, selector
    assert report["truncated"] and report["skipped_robots"] == 1
    # Two tries of the slow-loris, a back-off between them, all else in parallel.
    assert 2 * TOTAL <= seconds(outcome) < 2 * TOTAL + 1 + 10
