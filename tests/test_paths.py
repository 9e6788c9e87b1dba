"""The selector -> path mapping: examples, pure properties, and layouts on disk.

The layout properties put real files through ``Store`` into a temporary root
and check them with ``os.path.realpath``: nothing outside the hole dir, no two
keys on one case-folded path, no file where another key needs a directory,
whatever the insertion order.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from gophermirror.paths import (
    LONG_COMPONENT,
    MAX_CANONICAL_PATH,
    MAX_RESOLVED_PATH,
    Claim,
    canonical_parts,
    escape_component,
    hole_dirname,
    owner_key,
    parse_hole_dirname,
    resolve,
    unescape_component,
)
from gophermirror.store import Entry, Store

HOST, PORT = "example.org", 70
HOLE = hole_dirname(HOST, PORT)

# --- examples (the table in docs/store.md) -------------------------------------

EXAMPLES = [
    (b"/feeds/news/eurasianet/4800", "file", ("feeds", "news", "eurasianet", "4800")),
    (b"/feeds/news/eurasianet", "menu", ("feeds", "news", "eurasianet")),
    (b"/feeds/news/", "menu", ("feeds", "news")),
    (b"/feeds/news/", "file", ("feeds", "news", "=_")),
    (b"", "menu", ()),
    (b"/", "menu", ()),
    (b"", "file", ("=_",)),
    (b"/", "file", ("=_",)),
    (b"x", "file", ("x",)),
    (b"/a//b", "file", ("a", "=_", "b")),
    (b"/../../etc/passwd", "file", ("=2E=2E", "=2E=2E", "etc", "passwd")),
    (b"/.", "file", ("=2E",)),
    (b"/.hidden/x", "file", ("=2Ehidden", "x")),
    (b"/%2e%2e/x", "file", ("=252e=252e", "x")),
    (b"/a%20b", "file", ("a=2520b",)),
    (b"/a#1", "file", ("a=231",)),
    (b"/v1..2/a./b", "file", ("v1.=2E2", "a=2E", "b")),
    (b"/a\\b", "file", ("a=5Cb",)),
    (b"/a\x00b", "file", ("a=00b",)),
    (b"/a b\tc", "file", ("a=20b=09c",)),
    (b"/caf\xe9", "file", ("caf=E9",)),
    (b"/x=2E", "file", ("x=3D2E",)),
    (b'/a:b*c?d"e<f>g|h', "file", ("a=3Ab=2Ac=3Fd=22e=3Cf=3Eg=7Ch",)),
    (b"/gophermap", "file", ("=67ophermap",)),
    (b"/GopherMap", "file", ("=47opherMap",)),
    (b"/dir/gophertag", "file", ("dir", "=67ophertag")),
    (b"/.gophermirror-menu", "file", ("=2Egophermirror-menu",)),
    (b"/Feeds/A", "file", ("Feeds", "A")),
    (b"/~user/file.txt", "file", ("~user", "file.txt")),
]


@pytest.mark.parametrize(("selector", "kind", "parts"), EXAMPLES)
def test_canonical_examples(selector: bytes, kind: str, parts: tuple[str, ...]) -> None:
    assert canonical_parts(selector, kind) == parts


def test_long_component_keeps_a_prefix_and_a_hash() -> None:
    raw = b"x" * 300
    (name,) = canonical_parts(b"/" + raw, "file")
    assert name.startswith("x" * 160 + "=~")
    assert len(name) == 160 + 2 + 16
    assert name != escape_component(b"x" * 301)


def test_long_component_is_never_cut_inside_an_escape() -> None:
    for shift in range(3):
        raw = b"a" * shift + b"\x01" * 120
        name = escape_component(raw)
        head = name.split("=~")[0]
        assert len(head) <= 160
        assert unescape_component(head) is not None  # whole =XX groups only


def test_long_path_hashes_its_tail() -> None:
    selector = b"/" + b"/".join([b"d" * 150] * 40)
    parts = canonical_parts(selector, "file")
    assert len("/".join(parts)) <= MAX_CANONICAL_PATH
    assert parts[:-1] == ("d" * 150,) * (len(parts) - 1)
    assert parts[-1].startswith("=~") and len(parts[-1]) == 34
    other = canonical_parts(selector + b"x", "file")
    assert other[:-1] == parts[:-1] and other[-1] != parts[-1]


def test_hole_dirname() -> None:
    assert hole_dirname("Example.ORG", 70) == "example.org_70"
    assert hole_dirname("::1", 7070) == "=3A=3A1_7070"
    assert hole_dirname("127.0.0.1", 70) == "127.0.0.1_70"
    assert parse_hole_dirname("=3A=3A1_7070") == ("::1", 7070)
    assert parse_hole_dirname("atom") is None
    assert parse_hole_dirname("gophermap") is None
    with pytest.raises(ValueError, match="port"):
        hole_dirname("h", 70000)


def test_bad_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="kind"):
        canonical_parts(b"/x", "dir")


# --- pure properties ------------------------------------------------------------

NASTY = [
    "", ".", "..", "...", "%2e%2e", "%2E", "\\", "\x00", "A", "a", "b", "B", "gophermap",
    "GOPHERMAP", "gophertag", ".gophermirror", ".gophermirror-menu", ".gophermirror-tmp-x",
    "=", "=~", "=2E", "=_", "=~0123456789abcdef", " ", "\xff", "caf\xe9", "CAF\xc9",
    "x" * 230, "X" * 230, "\x01" * 90,
]  # fmt: skip
component = st.sampled_from([c.encode("latin-1") for c in NASTY]) | st.binary(max_size=6)


@st.composite
def nasty_selectors(draw: st.DrawFn) -> bytes:
    lead = b"/" if draw(st.booleans()) else b""
    trail = b"/" if draw(st.booleans()) else b""
    return lead + b"/".join(draw(st.lists(component, max_size=5))) + trail


long_selectors = st.builds(
    lambda base, n, last: b"/" + b"/".join([base] * n) + b"/" + last,
    st.sampled_from([b"d" * 150, b"D" * 150, b"e" * 199, b"\x01" * 60]),
    st.integers(18, 32),
    component,
)
selectors = st.binary(max_size=24) | nasty_selectors() | long_selectors
kinds = st.sampled_from(["menu", "file"])
keys = st.tuples(selectors, kinds)


@given(component | st.binary(max_size=300))
def test_escaped_names_are_safe(raw: bytes) -> None:
    name = escape_component(raw)
    assert name and name.isascii() and name.isprintable()
    assert not set(name) & set('/\\:*?"<>| \x00')
    assert not name.startswith(".")
    assert name.lower() not in ("gophermap", "gophertag")
    assert len(name) <= LONG_COMPONENT
    if "=~" not in name:
        assert unescape_component(name) == raw


@given(st.binary(max_size=300), st.binary(max_size=300))
def test_escape_is_injective(a: bytes, b: bytes) -> None:
    if a != b:
        assert escape_component(a) != escape_component(b)


@given(keys)
def test_canonical_paths_stay_short_and_relative(key: tuple[bytes, str]) -> None:
    parts = canonical_parts(*key)
    assert len("/".join(parts)) <= MAX_CANONICAL_PATH
    for name in parts:
        assert name not in ("", ".", "..") and "/" not in name
        assert len(name) <= LONG_COMPONENT


class DictClaims:
    """An in-memory claims table, recording what ``resolve`` asks to claim."""

    def __init__(self) -> None:
        self.claims: dict[str, Claim] = {}

    def lookup(self, fold: str) -> Claim | None:
        return self.claims.get(fold)

    def add(self, selector: bytes, kind: str) -> str:
        owner = owner_key(HOST, PORT, selector, kind)
        for claim in self.claims.values():
            if claim.owner == owner:
                return claim.path
        resolution = resolve(HOLE, selector, kind, owner, self)
        for claim in resolution.claims:
            self.claims[claim.fold] = claim
        return resolution.path


def check_layout(paths: dict[tuple[bytes, str], str]) -> None:
    """Distinct case-folded paths; no file on another key's way; all in the hole."""
    folds = {path.lower(): key for key, path in paths.items()}
    assert len(folds) == len(paths), "two keys share a case-folded path"
    files = {path.lower() for (_sel, kind), path in paths.items() if kind == "file"}
    spelling: dict[str, str] = {}  # one spelling per case-folded directory
    for path in paths.values():
        assert path == HOLE or path.startswith(HOLE + "/")
        assert len(path) <= MAX_RESOLVED_PATH + 64
        names = path.split("/")
        assert not {".", "..", ""} & set(names)
        for i in range(1, len(names)):
            prefix = "/".join(names[:i])
            assert prefix.lower() not in files, f"{path} is below a file"
            assert spelling.setdefault(prefix.lower(), prefix) == prefix, "case-variant dirs"


@given(st.lists(keys, max_size=30, unique=True), st.randoms(use_true_random=False))
def test_resolve_is_collision_free_in_any_order(
    items: list[tuple[bytes, str]], rng: object
) -> None:
    import random

    assert isinstance(rng, random.Random)
    shuffled = items[:]
    rng.shuffle(shuffled)
    for order in (items, shuffled):
        table = DictClaims()
        paths = {key: table.add(*key) for key in order}
        check_layout(paths)
        # a second ask gives the same path: stable given the table
        assert all(table.add(*key) == path for key, path in paths.items())


def test_first_claimant_keeps_the_canonical_path() -> None:
    table = DictClaims()
    assert table.add(b"/a", "file") == f"{HOLE}/a"
    assert table.add(b"/A", "file").startswith(f"{HOLE}/A=~")
    below = table.add(b"/a/b", "file")  # needs a dir where the file /a is
    assert below.startswith(f"{HOLE}/a=~") and below.endswith("/b")
    assert table.add(b"/a/c", "file").rsplit("/", 1)[0] == below.rsplit("/", 1)[0]
    assert table.add(b"a", "file").startswith(f"{HOLE}/a=~")  # 'a' vs '/a'
    assert table.add(b"/a", "menu").startswith(f"{HOLE}/a=~")  # 1/a vs 0/a
    assert table.add(b"", "menu") == HOLE
    assert table.add(b"/", "menu").startswith(f"{HOLE}/=_=~")


def test_a_menu_takes_over_the_directory_its_children_made() -> None:
    table = DictClaims()
    child = table.add(b"/feeds/news/4800", "file")
    assert table.add(b"/feeds/news", "menu") == f"{HOLE}/feeds/news"
    assert child == f"{HOLE}/feeds/news/4800"
    assert table.add(b"/feeds/news/", "menu").startswith(f"{HOLE}/feeds/news=~")


# --- layouts on disk --------------------------------------------------------------


def _body(selector: bytes, kind: str) -> bytes:
    return b"%s %r\n" % (kind.encode(), selector)


def put_all(store: Store, items: Iterable[tuple[bytes, str]]) -> dict[tuple[bytes, str], Entry]:
    out = {}
    for selector, kind in items:
        item_type = b"1" if kind == "menu" else b"0"
        result = store.put(
            host=HOST, port=PORT, selector=selector, item_type=item_type, body=_body(selector, kind)
        )
        out[selector, kind] = result.entry
    return out


def check_on_disk(root: Path, entries: dict[tuple[bytes, str], Entry]) -> None:
    check_layout({key: entry.path for key, entry in entries.items()})
    hole = os.path.realpath(root / HOLE)
    for (selector, kind), entry in entries.items():
        body = entry.body_abspath(root)
        real = os.path.realpath(body)
        assert os.path.commonpath([real, hole]) == hole
        assert body.read_bytes() == _body(selector, kind)
        if kind == "menu":
            assert entry.abspath(root).is_dir()


@settings(max_examples=40)
@given(st.lists(keys, max_size=14, unique=True), st.randoms(use_true_random=False))
def test_layout_on_disk_in_two_orders(items: list[tuple[bytes, str]], rng: object) -> None:
    import random

    assert isinstance(rng, random.Random)
    shuffled = items[:]
    rng.shuffle(shuffled)
    with tempfile.TemporaryDirectory() as tmp:
        for n, order in enumerate((items, shuffled)):
            root = Path(tmp) / f"r{n}"
            with Store.open(root, durable=False) as store:
                entries = put_all(store, order)
                check_on_disk(root, entries)
            with Store.open(root, durable=False) as store:  # stable across runs
                assert store.verify().problems == ()
                for (selector, kind), entry in entries.items():
                    assert store.path_for(HOST, PORT, selector, kind) == entry.path


class LayoutMachine(RuleBasedStateMachine):
    """Puts, commits and reopenings in any mix: paths never move or collide."""

    def __init__(self) -> None:
        super().__init__()
        self.tmp = tempfile.TemporaryDirectory()
        self.root = Path(self.tmp.name) / "root"
        self.store = Store.open(self.root, durable=False)
        self.paths: dict[tuple[bytes, str], str] = {}
        self.entries: dict[tuple[bytes, str], Entry] = {}

    @rule(key=keys)
    def put(self, key: tuple[bytes, str]) -> None:
        entry = put_all(self.store, [key])[key]
        assert self.paths.setdefault(key, entry.path) == entry.path
        self.entries[key] = entry

    @rule()
    def commit(self) -> None:
        self.store.commit()

    @rule()
    def reopen(self) -> None:
        self.store.close()
        self.store = Store.open(self.root, durable=False)

    @invariant()
    def collision_free(self) -> None:
        check_on_disk(self.root, self.entries)

    def teardown(self) -> None:
        self.store.close()
        self.tmp.cleanup()


TestLayoutMachine = LayoutMachine.TestCase
TestLayoutMachine.settings = settings(max_examples=15, stateful_step_count=25, deadline=None)
