"""Read and write the magical.fish news article layout.

Owns: turning the bytes of one magical.fish article into an ``ArticleMeta``
(title, authors, date, links, licence, body) for people and for Atom
entries, and generating articles in the same layout for the bundled sample
hole, the demo and the benchmark (``make_article``, ``sample_article``).

Must not touch: the stored bytes (they are decoded here for display only,
never rewritten), the network, the clock, the file system.

The layout, one item a line (``\\n``; ``\\r\\n`` is read too)::

    (C) Publisher
    This story was originally published by Publisher and is unaltered.
    . . . . . . . . . .
    (three blank lines)
    Title of the story [1]
    (blank)
    ['First Author', "Second O'Author"]        a Python list repr; may be []
    (blank)
    Date: 2025-07                              or 2025-07-21, or other forms
    (blank)
    paragraphs of the body, a blank line between them
    (blank)
    [END]
    ---
    [1] Url: https://example.org/original
    (blank)
    Published and (C) by Publisher
    Content appears here under this condition or license: Licence text.
    (blank)
    via Magical.Fish Gopher News Feeds:
    gopher://magical.fish/1/feeds/news/publisher/       (no final newline)

Strategy: decode the bytes as UTF-8 with ``errors="replace"`` (never
raises), split into lines, then look for each landmark on its own.  Every
piece may be missing; a missing piece gives ``None``.  The layout counts as
recognised when the dotted separator is among the first lines and at least
one more landmark (the ``[1]`` title, ``[END]`` or a footer line) is found.
"""

from __future__ import annotations

import datetime
import email.utils
import re
import unicodedata
from collections.abc import Sequence

import attrs

__all__ = [
    "DEFAULT_LICENCE",
    "DEFAULT_PUBLISHER",
    "SAMPLE_VIA",
    "ArticleMeta",
    "make_article",
    "parse_article",
    "parse_date",
    "sample_article",
]


@attrs.frozen
class ArticleMeta:
    """What a person wants to know about one article; all text is decoded for display."""

    title: str | None
    """The title line with its `` [1]`` footnote marker removed."""
    authors: tuple[str, ...]
    """The names from the authors line, in order; empty when there are none."""
    date: datetime.date | None
    """``date_text`` read as a date; a year-month gives the 1st of the month."""
    date_text: str | None
    """The raw value of the ``Date:`` line, whitespace-stripped."""
    original_url: str | None
    """The ``[1] Url:`` value: where the story was first published."""
    licence: str | None
    """The condition or licence text, verbatim (a trailing full stop is kept)."""
    publisher: str | None
    """Who published the story (the footer, else the header lines)."""
    via: str | None
    """The gopher URL given under ``via Magical.Fish Gopher News Feeds:``."""
    body: str
    """The paragraphs between the header block and ``[END]``, lines joined by
    ``\\n``; the whole decoded text when the layout is not recognised."""
    recognised: bool
    """True when the magical.fish layout was found."""


# --- landmarks ---------------------------------------------------------------
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_SEPARATOR = re.compile(r"\.(?:[ \t]*\.){2,}")
_HEADER_ORIGIN = re.compile(
    r"This story was originally published by\s+(.+?)\s+and is unaltered\.?", re.IGNORECASE
)
_HEADER_COPYRIGHT = re.compile(r"\(C\)\s*(.+)", re.IGNORECASE)
_TITLE_MARK = re.compile(r"\s*\[1\]\Z")
_DATE_LINE = re.compile(r"Date:(.*)", re.IGNORECASE)
_AUTHORS_LINE = re.compile(r"\[\s*(?:\]|['\"].*\])", re.DOTALL)
_END = "[END]"
_RULE = "---"
_FOOT_URL = re.compile(r"\[1\]\s*Url:(.*)", re.IGNORECASE)
_FOOT_PUBLISHER = re.compile(r"Published and \(C\) by(.*)", re.IGNORECASE)
_FOOT_LICENCE = re.compile(
    r"Content appears here under this condition or licen[cs]e:(.*)", re.IGNORECASE
)
_FOOT_VIA = re.compile(r"via\s+Magical\.Fish\b[^:]*:(.*)", re.IGNORECASE)
_FOOTER_LINES = (_FOOT_URL, _FOOT_PUBLISHER, _FOOT_LICENCE, _FOOT_VIA)

_HEADER_SPAN = 12
"""The dotted separator must be among this many first lines."""
_HEAD_FIELDS = 3
"""Title, authors and date: the non-blank lines read after the separator."""


def parse_article(data: bytes) -> ArticleMeta:
    """Read the metadata of one article; never raises, whatever ``data`` holds."""
    text = data.decode("utf-8", errors="replace")
    lines = _LINE_BREAK.split(text.removeprefix("\ufeff"))
    separator = _find_separator(lines)
    if separator is None:
        return _unrecognised(text)
    header = [line.strip() for line in lines[:separator]]
    title, authors, date_text, body_start = _read_head(lines, separator + 1)
    body_end, footer_start = _find_body_end(lines, body_start)
    footer = [line.strip() for line in lines[footer_start:]]
    has_end = footer_start < len(lines) and lines[footer_start].strip() == _END
    has_footer = any(rx.fullmatch(line) for line in footer for rx in _FOOTER_LINES)
    if title is None and not has_end and not has_footer:
        return _unrecognised(text)
    return ArticleMeta(
        title=title,
        authors=authors,
        date=None if date_text is None else parse_date(date_text),
        date_text=date_text,
        original_url=_first_value(footer, _FOOT_URL),
        licence=_first_value(footer, _FOOT_LICENCE),
        publisher=_first_value(footer, _FOOT_PUBLISHER) or _header_publisher(header),
        via=_via(footer),
        body=_join_body(lines[body_start:body_end]),
        recognised=True,
    )


def _unrecognised(text: str) -> ArticleMeta:
    return ArticleMeta(
        title=None,
        authors=(),
        date=None,
        date_text=None,
        original_url=None,
        licence=None,
        publisher=None,
        via=None,
        body=text,
        recognised=False,
    )


def _find_separator(lines: Sequence[str]) -> int | None:
    for index, line in enumerate(lines[:_HEADER_SPAN]):
        if _SEPARATOR.fullmatch(line.strip()):
            return index
    return None


def _read_head(
    lines: Sequence[str], start: int
) -> tuple[str | None, tuple[str, ...], str | None, int]:
    """Title, authors, date text and the index where the body starts."""
    candidates: list[tuple[int, str]] = []
    for index in range(start, len(lines)):
        stripped = lines[index].strip()
        if stripped:
            candidates.append((index, stripped))
            if len(candidates) == _HEAD_FIELDS:
                break
    title: str | None = None
    authors: tuple[str, ...] | None = None
    date_text: str | None = None
    body_start = start
    for position, (index, line) in enumerate(candidates):
        if position == 0 and _TITLE_MARK.search(line):
            title = _TITLE_MARK.sub("", line).strip() or None
            body_start = index + 1
            continue
        date_match = _DATE_LINE.fullmatch(line)
        if date_match:
            date_text = date_match.group(1).strip() or None
            body_start = index + 1
            break
        if authors is None and _AUTHORS_LINE.fullmatch(line):
            authors = _parse_authors(line)
            body_start = index + 1
            continue
        if position == 0 and _is_title(candidates[1:]):
            title = _TITLE_MARK.sub("", line).strip() or None
            body_start = index + 1
            continue
        break
    return title, authors or (), date_text, body_start


def _is_title(later: Sequence[tuple[int, str]]) -> bool:
    """A first line without the ``[1]`` marker is the title if an authors or date line follows."""
    return any(_DATE_LINE.fullmatch(s) or _AUTHORS_LINE.fullmatch(s) for _, s in later)


def _find_body_end(lines: Sequence[str], start: int) -> tuple[int, int]:
    """(end of the body, start of the footer); the footer starts at ``[END]`` if any."""
    for index in range(len(lines) - 1, start - 1, -1):
        if lines[index].strip() == _END:
            return index, index
    for index in range(start, len(lines)):
        stripped = lines[index].strip()
        if any(rx.fullmatch(stripped) for rx in _FOOTER_LINES):
            end = index
            while end > start and not lines[end - 1].strip():
                end -= 1
            if end > start and lines[end - 1].strip() == _RULE:
                end -= 1
            return end, end
    return len(lines), len(lines)


def _join_body(lines: Sequence[str]) -> str:
    first, last = 0, len(lines)
    while first < last and not lines[first].strip():
        first += 1
    while last > first and not lines[last - 1].strip():
        last -= 1
    return "\n".join(lines[first:last])


def _first_value(lines: Sequence[str], pattern: re.Pattern[str]) -> str | None:
    for line in lines:
        match = pattern.fullmatch(line)
        if match:
            return match.group(1).strip() or None
    return None


def _header_publisher(header: Sequence[str]) -> str | None:
    for pattern in (_HEADER_ORIGIN, _HEADER_COPYRIGHT):
        value = _first_value(header, pattern)
        if value:
            return value
    return None


def _via(footer: Sequence[str]) -> str | None:
    for index, line in enumerate(footer):
        match = _FOOT_VIA.fullmatch(line)
        if not match:
            continue
        inline = match.group(1).strip()
        if inline:
            return inline
        for after in footer[index + 1 :]:
            if after:
                return after
        return None
    return None


# --- the authors line: a Python list of string literals --------------------
_STRING_LITERAL = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"", re.DOTALL)
_ESCAPE = re.compile(r"\\(x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|.)", re.DOTALL)
_SIMPLE_ESCAPES = {
    "\\": "\\", "'": "'", '"': '"', "n": "\n", "t": "\t", "r": "\r",
    "a": "\a", "b": "\b", "f": "\f", "v": "\v", "0": "\0",
}  # fmt: skip


def _parse_authors(line: str) -> tuple[str, ...]:
    """Names from ``['A', "B'C"]``; a malformed list is split on commas instead."""
    names = _parse_literal_list(line)
    if names is None:
        names = [part.strip().strip("'\"") for part in line[1:-1].split(",")]
    return tuple(name for name in (n.strip() for n in names) if name)


def _parse_literal_list(line: str) -> list[str] | None:
    """The strings of a list literal such as Python's repr writes; None if malformed."""
    inner = line[1:-1]
    names: list[str] = []
    position = 0
    want_item = True
    while True:
        while position < len(inner) and inner[position].isspace():
            position += 1
        if position == len(inner):
            return names
        if want_item:
            literal = _STRING_LITERAL.match(inner, position)
            if literal is None:
                return None
            names.append(_unescape(literal.group()[1:-1]))
            position = literal.end()
        elif inner[position] == ",":
            position += 1
        else:
            return None
        want_item = not want_item


def _unescape(body: str) -> str:
    return _ESCAPE.sub(_unescape_one, body)


def _unescape_one(match: re.Match[str]) -> str:
    code = match.group(1)
    if len(code) > 1:
        value = int(code[1:], 16)
        if 0xD800 <= value <= 0xDFFF:
            return "\ufffd"  # a lone surrogate cannot be displayed or encoded
        return chr(value) if value <= 0x10FFFF else match.group()
    return _SIMPLE_ESCAPES.get(code, match.group())


# --- dates -------------------------------------------------------------------
_MONTHS = {
    name: number
    for number, names in enumerate(
        (
            ("january", "jan"), ("february", "feb"), ("march", "mar"), ("april", "apr"),
            ("may",), ("june", "jun"), ("july", "jul"), ("august", "aug"),
            ("september", "sep", "sept"), ("october", "oct"), ("november", "nov"),
            ("december", "dec"),
        ),
        start=1,
    )
    for name in names
}  # fmt: skip
_ISO_DATE = re.compile(r"([0-9]{4})[-/.]([0-9]{1,2})[-/.]([0-9]{1,2})(?:[Tt ].*)?")
_YEAR_MONTH = re.compile(r"([0-9]{4})[-/.]([0-9]{1,2})")
_YEAR = re.compile(r"([0-9]{4})")
_DAY_MONTH_YEAR = re.compile(r"(?:[A-Za-z]+,?\s+)?([0-9]{1,2})\.?\s+([A-Za-z]+)\.?,?\s+([0-9]{4})")
_MONTH_DAY_YEAR = re.compile(r"([A-Za-z]+)\.?\s+([0-9]{1,2})(?:st|nd|rd|th)?,?\s+([0-9]{4})")
_MONTH_YEAR = re.compile(r"([A-Za-z]+)\.?,?\s+([0-9]{4})")


def parse_date(text: str) -> datetime.date | None:
    """Read a date written as 2025-07-21, 2025-07, 2025, 21 July 2025, July 21, 2025,
    July 2025 or an RFC 2822 date; a missing day (and month) counts as the 1st.
    Anything else gives ``None``; never raises."""
    text = text.strip()
    if match := _ISO_DATE.fullmatch(text):
        return _date(match.group(1), match.group(2), match.group(3))
    if match := _YEAR_MONTH.fullmatch(text):
        return _date(match.group(1), match.group(2), "1")
    if match := _YEAR.fullmatch(text):
        return _date(match.group(1), "1", "1")
    if match := _DAY_MONTH_YEAR.fullmatch(text):
        return _date(match.group(3), _MONTHS.get(match.group(2).lower()), match.group(1))
    if match := _MONTH_DAY_YEAR.fullmatch(text):
        return _date(match.group(3), _MONTHS.get(match.group(1).lower()), match.group(2))
    if match := _MONTH_YEAR.fullmatch(text):
        return _date(match.group(2), _MONTHS.get(match.group(1).lower()), "1")
    return _rfc2822_date(text)


def _date(year: str | int, month: str | int | None, day: str | int) -> datetime.date | None:
    if month is None:
        return None
    try:
        return datetime.date(int(year), int(month), int(day))
    except (ValueError, OverflowError):
        return None


def _rfc2822_date(text: str) -> datetime.date | None:
    if len(text) > 100:
        return None
    try:
        parts = email.utils.parsedate_tz(text)
    except (ValueError, IndexError, TypeError, OverflowError):
        return None
    if parts is None:
        return None
    return _date(parts[0], parts[1], parts[2])


# --- writing articles ----------------------------------------------------------
DEFAULT_PUBLISHER = "Example Gazette"
"""The publisher named by generated articles unless told otherwise."""
DEFAULT_LICENCE = "Creative Commons CC BY 4.0."
"""The licence line of generated articles unless told otherwise."""
SAMPLE_VIA = "gopher://gopher.example.org/1/feeds/news/sample/"
"""The feed URL that ``sample_article`` writes in its via block by default."""
_SEPARATOR_LINE = ". . . . . . . . . ."


def make_article(
    n: int,
    *,
    title: str,
    authors: Sequence[str],
    date: datetime.date | str,
    url: str,
    paragraphs: Sequence[str],
    via: str,
    publisher: str = DEFAULT_PUBLISHER,
    licence: str = DEFAULT_LICENCE,
) -> bytes:
    """Article number ``n`` in the magical.fish layout, as UTF-8 with no final newline.

    ``n`` is the article's number in its feed; the layout itself does not carry
    it.  A ``date`` object is written as YYYY-MM-DD, a string verbatim.  Lone
    surrogates in the text raise ``UnicodeEncodeError``.
    """
    date_text = date if isinstance(date, str) else date.isoformat()
    lines = [
        f"(C) {publisher}",
        f"This story was originally published by {publisher} and is unaltered.",
        _SEPARATOR_LINE,
        "",
        "",
        "",
        f"{title} [1]",
        "",
        str(list(authors)),
        "",
        f"Date: {date_text}",
        "",
    ]
    for paragraph in paragraphs:
        lines += [paragraph, ""]
    lines += [
        _END,
        _RULE,
        f"[1] Url: {url}",
        "",
        f"Published and (C) by {publisher}",
        f"Content appears here under this condition or license: {licence}",
        "",
        "via Magical.Fish Gopher News Feeds:",
        via,
    ]
    return "\n".join(lines).encode("utf-8")


@attrs.define(eq=False)
class _Dice:
    """A splitmix64 generator: the same numbers on every Python version."""

    state: int

    def next(self) -> int:
        self.state = (self.state + 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
        return z ^ (z >> 31)

    def below(self, bound: int) -> int:
        return self.next() % bound

    def pick(self, choices: Sequence[str]) -> str:
        return choices[self.below(len(choices))]


_PLACES = (
    "Kåsvik", "Port Ellery", "Nørholm", "São Brando", "Valderra", "Çamlıca Vale",
    "Ostrava Nova", "Kestrel Bay", "Żelazna Góra", "Lindenau", "Aberfoyle Cross", "Mérida Alta",
)  # fmt: skip
_SUBJECTS = (
    "the harbour council", "the beekeepers’ association", "the river authority",
    "a weavers’ cooperative", "the tram drivers’ union", "the regional library",
    "the fishing cooperative", "the bakers’ guild", "a group of retired teachers",
    "the mountain rescue service", "the young farmers’ club", "the orchestra’s board",
)  # fmt: skip
_VERBS = (
    "weighs", "rejects", "postpones", "celebrates", "debates", "quietly expands",
    "questions", "backs", "redraws", "returns to",
)  # fmt: skip
_OBJECTS = (
    "a new ferry timetable", "plans for a solar market", "the “green corridor” proposal",
    "its century-old archive", "a ban on night trawling", "the winter festival",
    "a shared tool library", "the old salt road", "rules for street musicians",
    "a “slow streets” pilot", "the price of bread", "a café on the pier",
)  # fmt: skip
_TAILS = (
    "after months of talks", "despite objections from neighbours", "for the third year running",
    "ahead of the spring thaw", "with little fanfare", "as costs keep rising",
    "following a heated public meeting", "under pressure from visitors",
)  # fmt: skip
_QUOTES = (
    "We are not in a hurry", "It’s the people’s decision", "Nobody asked us first",
    "This is how it has always worked here", "We’ll see what the numbers say",
    "I don’t think anyone expected this", "The sea doesn’t wait for committees",
)  # fmt: skip
_FIRST_NAMES = (
    "Ana", "Zoë", "Søren", "Nino", "Malik", "Aigerim", "Tomás", "Ilse", "Dilnoza",
    "Rustam", "Siobhán", "Émile", "Giorgi", "Yuki",
)  # fmt: skip
_LAST_NAMES = (
    "O'Neill", "Ağaoğlu", "Kovač", "Abernethy", "Lindqvist", "Beridze", "Nurlanova",
    "D'Souza", "Petrović", "Haddad", "Øvergaard", "Mbeki",
)  # fmt: skip
_SAMPLE_EPOCH = datetime.date(2019, 1, 7)
_SAMPLE_DAYS = 2_000_000  # stays well inside datetime.date's range


def sample_article(n: int, *, via: str = SAMPLE_VIA) -> bytes:
    """A plausible made-up article number ``n``: the same bytes for the same ``n``.

    2 to 6 KB of UTF-8 with curly quotes and other non-ASCII text; zero to
    three authors; the date moves forward with ``n`` (three articles a day),
    written as YYYY-MM and, for every fifth article, as YYYY-MM-DD.
    """
    dice = _Dice(n & 0xFFFFFFFFFFFFFFFF)
    day = _SAMPLE_EPOCH + datetime.timedelta(days=(n % (3 * _SAMPLE_DAYS)) // 3)
    place = dice.pick(_PLACES)
    subject = dice.pick(_SUBJECTS)
    title = f"In {place}, {subject} {dice.pick(_VERBS)} {dice.pick(_OBJECTS)}"
    authors = [f"{dice.pick(_FIRST_NAMES)} {dice.pick(_LAST_NAMES)}" for _ in range(dice.below(4))]
    target = 1600 + dice.below(3400)
    paragraphs: list[str] = []
    size = 0
    while size < target:
        paragraph = " ".join(_sentence(dice, place) for _ in range(2 + dice.below(4)))
        paragraphs.append(paragraph)
        size += len(paragraph.encode("utf-8")) + 2
    slug = _slug(title)
    return make_article(
        n,
        title=title,
        authors=authors,
        date=day.isoformat() if n % 5 == 0 else f"{day:%Y-%m}",
        url=f"https://news.example.org/{day:%Y/%m}/{slug}-{n}",
        paragraphs=paragraphs,
        via=via,
    )


def _sentence(dice: _Dice, place: str) -> str:
    subject = dice.pick(_SUBJECTS)
    if dice.below(4) == 0:
        name = f"{dice.pick(_FIRST_NAMES)} {dice.pick(_LAST_NAMES)}"
        return f"“{dice.pick(_QUOTES)},” said {name}, who lives in {place}."
    sentence = f"{subject} {dice.pick(_VERBS)} {dice.pick(_OBJECTS)} {dice.pick(_TAILS)}."
    return sentence[0].upper() + sentence[1:]


def _slug(title: str) -> str:
    ascii_title = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode("ascii")
    return "-".join(re.findall(r"[a-z0-9]+", ascii_title.lower()))
