"""Row 5: menu lines per second of ``protocol.parse_menu`` beside a bare split loop.

Owns: timing ``parse_menu`` on one big menu body and the loop
``for line in body.split(b"\\r\\n"): line.split(b"\\t")`` on the same bytes
(best of ``reps`` runs each), and checking that the parse kept every line.
Must not touch: anything but the bytes it is given.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable

import attrs

from gophermirror.protocol import format_menu, parse_menu

from .native import BenchError


@attrs.frozen
class ParseFigures:
    """Both loops on the same menu."""

    lines: int
    bytes: int
    parse_seconds: float
    """Best of the runs."""
    split_seconds: float
    """Best of the runs."""

    @property
    def parse_lines_per_s(self) -> float:
        """parse_menu's menu lines per second."""
        return self.lines / self.parse_seconds

    @property
    def split_lines_per_s(self) -> float:
        """The bare split loop's lines per second."""
        return self.lines / self.split_seconds

    @property
    def ratio(self) -> float:
        """parse_menu's rate over the split loop's."""
        return self.parse_lines_per_s / self.split_lines_per_s

    def as_dict(self) -> dict[str, object]:
        """A JSON-ready summary."""
        return {
            "lines": self.lines,
            "bytes": self.bytes,
            "parse_menu_s": round(self.parse_seconds, 5),
            "split_s": round(self.split_seconds, 5),
            "parse_menu_lines_per_s": round(self.parse_lines_per_s),
            "split_lines_per_s": round(self.split_lines_per_s),
            "ratio": round(self.ratio, 3),
        }


def split_loop(body: bytes) -> int:
    """The baseline: split into lines, split each line into fields."""
    count = 0
    for line in body.split(b"\r\n"):
        line.split(b"\t")
        count += 1
    return count


def _best(run: Callable[[], object], reps: int) -> float:
    best = float("inf")
    for _ in range(reps):
        gc.collect()
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best


def measure_parsing(body: bytes, reps: int) -> ParseFigures:
    """Time both loops on ``body`` (CRLF lines) and check the parse is lossless."""
    lines = body.count(b"\r\n")
    menu = parse_menu(body)
    if len(menu.lines) != lines or format_menu(menu) != body:
        raise BenchError("parse_menu did not keep the benchmark menu line for line")
    del menu
    parse = _best(lambda: parse_menu(body), reps)
    split = _best(lambda: split_loop(body), reps)
    return ParseFigures(lines, len(body), parse, split)
