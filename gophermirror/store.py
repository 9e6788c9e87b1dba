"""The mirror root on disk: atomic writes, the SQLite manifest, verify.

Owns: everything below a mirror ROOT (docs/store.md): the hole directories and
the files in them, ``ROOT/.gophermirror/`` (manifest, lock), the claims table
that keeps the selector -> path mapping collision-free, the batching of writes
into durable group commits, and ``verify``.
Must not touch: the network, menus' meaning (bytes in, bytes out), the clock
beyond stamping rows.  It is synchronous: the crawler calls it from trio in
short calls, so every call is a few indexed SQLite statements and at most one
small file write; ``commit``, ``verify`` and ``prune`` are the slow ones.
Not thread-safe: one thread at a time.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import secrets
import shutil
import sqlite3
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import quote

import attrs

from gophermirror.errors import StoreError
from gophermirror.paths import (
    MAP_NAME,
    MENU_BODY_NAME,
    STATE_DIR,
    TMP_PREFIX,
    Claim,
    hole_dirname,
    owner_key,
    parse_hole_dirname,
    resolve,
    unescape_component,
)
from gophermirror.protocol import GopherURL, format_url

SCHEMA_VERSION = 1
"""``PRAGMA user_version`` of the manifest this code writes."""

MAX_ROOT_BYTES = 240
"""Longest absolute ROOT path: resolved paths below ROOT stay under PATH_MAX."""

FILE_MODE = 0o644
"""Mode of every file written (never x: gophernicus executes x maps)."""

DIR_MODE = 0o755
"""Mode of every directory created."""

STATUSES = ("ok", "gone", "failed")
"""Row statuses: stored, no longer listed, never stored successfully."""

_GENERATED = frozenset({MAP_NAME, "gophertag"})
_CHUNK = 1 << 20

_SCHEMA = """
CREATE TABLE items (
    id INTEGER PRIMARY KEY,
    host TEXT NOT NULL,
    port INTEGER NOT NULL,
    selector BLOB NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('menu', 'file')),
    url TEXT NOT NULL,
    item_type BLOB NOT NULL,
    path TEXT NOT NULL,
    size INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    terminator BLOB NOT NULL,
    first_seen REAL NOT NULL,
    last_fetched REAL NOT NULL,
    last_changed REAL NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('ok', 'gone', 'failed')),
    error TEXT,
    run_id INTEGER,
    fetched_run INTEGER
);
CREATE UNIQUE INDEX items_key ON items (host, port, selector, kind);
CREATE INDEX items_path ON items (path);
CREATE TABLE claims (
    fold TEXT PRIMARY KEY,
    path TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('dir', 'file')),
    owner BLOB
) WITHOUT ROWID;
CREATE INDEX claims_owner ON claims (owner) WHERE owner IS NOT NULL;
CREATE TABLE pending_renames (tmp TEXT PRIMARY KEY, final TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE runs (id INTEGER PRIMARY KEY, started REAL NOT NULL);
CREATE TABLE aux (path TEXT PRIMARY KEY, size INTEGER NOT NULL, sha256 TEXT NOT NULL,
                  written REAL NOT NULL) WITHOUT ROWID;
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE store_state (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
"""

_ENTRY_COLS = (
    "url, host, port, selector, item_type, kind, path, size, sha256, terminator,"
    " first_seen, last_fetched, last_changed, status, error"
)


@attrs.frozen
class Entry:
    """One manifest row: an item of a hole and where its bytes are."""

    url: str
    """RFC 4266 URL of the item."""
    host: str
    """Host, lower-cased."""
    port: int
    """Port."""
    selector: bytes
    """The selector, exact bytes."""
    item_type: bytes
    """The item type byte it was last fetched as."""
    kind: str
    """``'menu'`` (stored as a directory) or ``'file'``."""
    path: str
    """Path relative to ROOT, ``/``-separated: the menu directory or the file."""
    size: int
    """Length of the stored body (0 if never stored)."""
    sha256: str
    """Hex sha256 of the stored body; ``''`` if never stored."""
    terminator: bytes
    """Framing bytes split off the body (``b''`` or e.g. ``b'.\\r\\n'``)."""
    first_seen: float
    """Unix time the row was created."""
    last_fetched: float
    """Unix time of the last successful fetch (0.0 if never)."""
    last_changed: float
    """Unix time the body or terminator last changed (0.0 if never stored)."""
    status: str
    """``'ok'``, ``'gone'`` or ``'failed'`` (never stored successfully)."""
    error: str | None
    """The last fetch error, if the last attempt failed."""

    def abspath(self, root: Path | str) -> Path:
        """The item's path below ``root``: the menu directory or the file."""
        return Path(root) / self.path

    def body_abspath(self, root: Path | str) -> Path:
        """The file holding the body: for a menu, ``<dir>/.gophermirror-menu``."""
        return Path(root) / _body_relpath(self.path, self.kind)


@attrs.frozen
class PutResult:
    """What ``Store.put`` did."""

    entry: Entry
    """The row as it is now."""
    outcome: str
    """``'new'``, ``'changed'`` (body or terminator) or ``'unchanged'``."""


@attrs.frozen
class Problem:
    """One thing ``verify`` found wrong."""

    path: str
    """Path relative to ROOT of the file concerned."""
    url: str | None
    """URL of the row, None for files with no row."""
    kind: str
    """``'missing'``, ``'hash'``, ``'size'``, ``'orphan'`` or ``'tmp'``."""
    detail: str
    """One line for a person."""


@attrs.frozen
class VerifyReport:
    """Result of ``Store.verify``."""

    checked: int
    """Rows with a stored body that were checked."""
    ok: int
    """Of those, rows whose file matched size and sha256."""
    problems: tuple[Problem, ...]
    """Everything that did not match, in walk order."""
    adopted: tuple[Entry, ...] = ()
    """Rows added for orphan files by ``adopt=True``."""


def _body_relpath(path: str, kind: str) -> str:
    return f"{path}/{MENU_BODY_NAME}" if kind == "menu" else path


def _kind_of(item_type: bytes) -> str:
    if len(item_type) != 1:
        raise ValueError(f"item_type must be one byte, not {item_type!r}")
    return "menu" if item_type == b"1" else "file"


def _check_kind(kind: str) -> None:
    if kind not in ("menu", "file"):
        raise ValueError(f"kind must be 'menu' or 'file', not {kind!r}")


def _norm_host(host: str) -> str:
    return host.lower()


def _gopher_url(host: str, port: int, item_type: bytes, selector: bytes) -> str:
    return format_url(GopherURL(host, port, item_type, selector))


def _entry(row: Any) -> Entry:
    return Entry(
        url=row[0],
        host=row[1],
        port=row[2],
        selector=bytes(row[3]),
        item_type=bytes(row[4]),
        kind=row[5],
        path=row[6],
        size=row[7],
        sha256=row[8],
        terminator=bytes(row[9]),
        first_seen=row[10],
        last_fetched=row[11],
        last_changed=row[12],
        status=row[13],
        error=row[14],
    )


def _fsync_path(path: str, directory: bool = False) -> None:
    flags = os.O_RDONLY | (os.O_DIRECTORY if directory else 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _hash_file(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _under(fold: str) -> tuple[str, str]:
    """Bounds of the case-folded paths strictly below ``fold``."""
    return fold + "/", fold + "0"  # '0' is the character after '/'


class _Claims:
    """``paths.ClaimLookup`` over the claims table.

    Directory claims are cached: a crawl asks for the same few directories
    (the hole dir, ``feeds``, ``feeds/news``...) for every item below them,
    and a directory claim only goes away through ``forget``.
    """

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db
        self._dirs: dict[str, Claim] = {}

    def lookup(self, fold: str) -> Claim | None:
        cached = self._dirs.get(fold)
        if cached is not None:
            return cached
        row = self._db.execute(
            "SELECT path, kind, owner FROM claims WHERE fold = ?", (fold,)
        ).fetchone()
        if row is None:
            return None
        claim = Claim(row[0], row[1], None if row[2] is None else bytes(row[2]))
        if claim.kind == "dir":
            self._dirs[fold] = claim
        return claim

    def remember(self, claims: tuple[Claim, ...]) -> None:
        """New claims were inserted: cache the directories among them."""
        for claim in claims:
            if claim.kind == "dir":
                self._dirs[claim.fold] = claim

    def forget(self) -> None:
        """Claims were deleted (prune): drop the cache."""
        self._dirs.clear()


@attrs.define(eq=False)
class Store:
    """A mirror root: files below ROOT and the manifest that describes them.

    Use ``Store.open``; close it (or use ``with``) so the last batch commits.
    """

    root: Path
    """The mirror root (absolute)."""
    durable: bool
    """fsync files and directories before each manifest commit."""
    _db: sqlite3.Connection
    _lock_fd: int
    _run_id: int | None = None
    _dirty_files: set[str] = attrs.Factory(set)
    _dirty_dirs: set[str] = attrs.Factory(set)
    _fresh: set[str] = attrs.Factory(set)
    _staged: dict[str, str] = attrs.Factory(dict)
    _closed: bool = False
    _claims: _Claims | None = None
    _tmp_serial: int = 0
    _known_dirs: set[str] = attrs.Factory(set)
    """Directories (relative) known to exist: ``_write_now`` skips the walk."""

    # --- opening and closing ------------------------------------------------
    @classmethod
    def open(cls, root: Path | str, *, durable: bool = True, create: bool = True) -> Store:
        """Open the store at ``root``, creating it if allowed.

        A new or empty directory becomes a store when ``create`` is true; a
        non-empty directory without ``.gophermirror/`` is refused (StoreError),
        as is a second open of a store while another one holds it.
        """
        root = Path(root).absolute()
        if len(os.fsencode(str(root))) > MAX_ROOT_BYTES:
            raise StoreError(f"mirror root path longer than {MAX_ROOT_BYTES} bytes", root)
        state = root / STATE_DIR
        manifest = state / "manifest.sqlite"
        if not manifest.exists():
            if root.exists() and not root.is_dir():
                raise StoreError("mirror root is not a directory", root)
            if root.exists() and not state.is_dir() and any(root.iterdir()):
                raise StoreError("not a gophermirror store, and not empty: refusing", root)
            if not create:
                raise StoreError("not a gophermirror store", root)
            try:
                root.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
                state.mkdir(mode=DIR_MODE, exist_ok=True)
                os.chmod(state, DIR_MODE)
            except OSError as e:
                raise StoreError(f"cannot create store: {e.strerror}", root) from e
        try:
            lock_fd = os.open(state / "lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, FILE_MODE)
        except OSError as e:
            raise StoreError(f"cannot open the store lock: {e.strerror}", root) from e
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(lock_fd)
            raise StoreError("store is in use by another process", root) from None
        try:
            db = sqlite3.connect(manifest, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as e:
            os.close(lock_fd)
            raise StoreError(f"cannot open manifest: {e}", manifest) from e
        store = cls(root=root, durable=durable, db=db, lock_fd=lock_fd)
        try:
            store._setup()
        except BaseException:
            db.close()
            os.close(lock_fd)
            raise
        return store

    def _setup(self) -> None:
        db = self._db
        try:
            db.execute("PRAGMA journal_mode = WAL")
            db.execute(f"PRAGMA synchronous = {'FULL' if self.durable else 'OFF'}")
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version == 0:  # one transaction: a crash leaves no half schema
                db.executescript(
                    f"BEGIN IMMEDIATE; {_SCHEMA}; PRAGMA user_version = {SCHEMA_VERSION};"
                    " INSERT INTO store_state VALUES ('clean', '1'); COMMIT;"
                )
            elif version > SCHEMA_VERSION:
                raise StoreError(f"manifest schema {version} is newer than this program", self.root)
        except sqlite3.DatabaseError as e:
            raise StoreError(f"manifest unreadable: {e}", self.root) from e
        self._recover()

    def _recover(self) -> None:
        """Redo the renames a crash interrupted, then sweep stray temp files."""
        pending = self._db.execute("SELECT tmp, final FROM pending_renames").fetchall()
        for tmp, final in pending:
            tmp_abs, final_abs = str(self.root / tmp), str(self.root / final)
            if os.path.lexists(tmp_abs):
                self._replace(tmp_abs, final_abs)
                if self.durable:
                    _fsync_path(os.path.dirname(final_abs), directory=True)
        row = self._db.execute("SELECT value FROM store_state WHERE key = 'clean'").fetchone()
        if row is None or row[0] != "1":
            self._sweep_temps()
        self._begin()
        self._db.execute("DELETE FROM pending_renames")
        self._db.execute("INSERT OR REPLACE INTO store_state VALUES ('clean', '0')")
        self._db.execute("COMMIT")

    def _sweep_temps(self) -> None:
        for dirpath, dirnames, filenames in os.walk(self.root):
            if dirpath == str(self.root) and STATE_DIR in dirnames:
                dirnames.remove(STATE_DIR)
            for name in filenames:
                if name.startswith(TMP_PREFIX):
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(os.path.join(dirpath, name))

    def close(self) -> None:
        """Commit the last batch, mark the store closed cleanly, release it."""
        if self._closed:
            return
        try:
            self.commit()
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute("INSERT OR REPLACE INTO store_state VALUES ('clean', '1')")
            self._db.execute("COMMIT")
        finally:
            self._closed = True
            self._db.close()
            os.close(self._lock_fd)

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # --- small helpers --------------------------------------------------------
    def _live(self) -> sqlite3.Connection:
        if self._closed:
            raise StoreError("store is closed", self.root)
        return self._db

    def _begin(self) -> None:
        if not self._live().in_transaction:
            self._db.execute("BEGIN IMMEDIATE")

    def _abs(self, rel: str) -> str:
        return os.path.join(self.root, rel)

    def _row(self, host: str, port: int, selector: bytes, kind: str) -> Entry | None:
        row = self._db.execute(
            f"SELECT {_ENTRY_COLS} FROM items"
            " WHERE host = ? AND port = ? AND selector = ? AND kind = ?",
            (host, port, selector, kind),
        ).fetchone()
        return None if row is None else _entry(row)

    def _claimed_below(self, fold: str) -> bool:
        lo, hi = _under(fold)
        row = self._db.execute(
            "SELECT 1 FROM claims WHERE fold > ? AND fold < ? LIMIT 1", (lo, hi)
        ).fetchone()
        return row is not None

    def _clear_obstacle(self, path: str, rel: str) -> None:
        """Remove what a crash left where a claimed path must go.

        Only ever called for a path this store claimed: whatever is there
        has no row (a claimed path below an unclaimed dir cannot exist).
        A file written by ``write_aux`` is never removed.
        """
        if self._is_aux(rel):
            raise StoreError("a generated file is in the way", rel)
        st = os.lstat(path)
        if stat.S_ISDIR(st.st_mode):
            if self._claimed_below(rel.lower()):
                raise StoreError("directory in the way holds claimed paths", rel)
            shutil.rmtree(path)
            self._known_dirs.clear()
        else:
            os.unlink(path)

    def _ensure_dir(self, rel: str, *, clear: bool = True) -> str:
        """Create ``ROOT/rel`` and the directories on the way, mode 0755.

        ``clear``: remove a crash's leftovers in the way (claimed paths only);
        otherwise anything but a directory in the way is a StoreError.
        """
        path = str(self.root)
        for i, name in enumerate(rel.split("/")):
            parent, path = path, os.path.join(path, name)
            try:
                st = os.lstat(path)
            except FileNotFoundError:
                pass
            else:
                if stat.S_ISDIR(st.st_mode):
                    continue
                prefix = "/".join(rel.split("/")[: i + 1])
                if not clear:
                    raise StoreError("not a directory, in the way", prefix)
                self._clear_obstacle(path, prefix)
            os.mkdir(path, DIR_MODE)
            os.chmod(path, DIR_MODE)
            self._dirty_dirs.add(parent)
        return path

    def _write_temp(self, directory: str, data: bytes) -> str:
        # Names from a counter (cheaper than random); O_EXCL makes a clash with
        # a crashed run's leftover (same pid) fall back to a random name.
        self._tmp_serial += 1
        tmp = os.path.join(directory, f"{TMP_PREFIX}{os.getpid():x}-{self._tmp_serial:x}")
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
        try:
            fd = os.open(tmp, flags, FILE_MODE)
        except FileExistsError:
            tmp = os.path.join(directory, TMP_PREFIX + secrets.token_hex(8))
            fd = os.open(tmp, flags, FILE_MODE)
        try:
            os.fchmod(fd, FILE_MODE)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
        except BaseException:
            os.close(fd)
            os.unlink(tmp)
            raise
        os.close(fd)
        return tmp

    def _replace(self, tmp: str, final: str, *, clear: bool = True) -> None:
        try:
            os.replace(tmp, final)
        except IsADirectoryError:
            if not clear:
                raise
            self._clear_obstacle(final, os.path.relpath(final, self.root).replace(os.sep, "/"))
            os.replace(tmp, final)

    def _write_now(self, rel: str, data: bytes, *, clear: bool = True) -> None:
        """Write ``ROOT/rel`` atomically now (temp + rename); fsync at commit."""
        if "/" in rel:
            parent = os.path.dirname(rel)
            if parent in self._known_dirs:
                directory = self._abs(parent)
            else:
                directory = self._ensure_dir(parent, clear=clear)
                self._known_dirs.add(parent)
        else:
            directory = str(self.root)
        final = self._abs(rel)
        try:
            tmp = self._write_temp(directory, data)
        except FileNotFoundError:
            # The directory went away under us (removed by hand): walk again.
            self._known_dirs.clear()
            directory = self._ensure_dir(os.path.dirname(rel), clear=clear)
            tmp = self._write_temp(directory, data)
        try:
            self._replace(tmp, final, clear=clear)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        self._dirty_files.add(final)
        self._dirty_dirs.add(directory)

    def _stage(self, rel: str, data: bytes) -> None:
        """Write a replacement for a file a committed row describes; rename at commit."""
        directory = self._ensure_dir(os.path.dirname(rel))
        tmp = self._write_temp(directory, data)
        tmp_rel = os.path.relpath(tmp, self.root).replace(os.sep, "/")
        old = self._staged.pop(rel, None)
        if old is not None:
            self._db.execute("DELETE FROM pending_renames WHERE tmp = ?", (old,))
            self._dirty_files.discard(self._abs(old))
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._abs(old))
        self._db.execute("INSERT INTO pending_renames VALUES (?, ?)", (tmp_rel, rel))
        self._staged[rel] = tmp_rel
        self._dirty_files.add(tmp)
        self._dirty_dirs.add(directory)

    def _body_intact(self, rel: str, size: int) -> bool:
        target = self._staged.get(rel, rel)
        try:
            st = os.lstat(self._abs(target))
        except FileNotFoundError:
            return False
        return stat.S_ISREG(st.st_mode) and st.st_size == size

    # --- paths ----------------------------------------------------------------
    def hole_dir(self, host: str, port: int) -> Path:
        """``ROOT/<hole>``, whether it exists or not."""
        return self.root / hole_dirname(_norm_host(host), port)

    def path_for(self, host: str, port: int, selector: bytes, kind: str) -> str:
        """Claim (or reuse) the relative path of an item; writes no content."""
        self._live()
        _check_kind(kind)
        host = _norm_host(host)
        owner = owner_key(host, port, selector, kind)
        row = self._db.execute("SELECT path FROM claims WHERE owner = ?", (owner,)).fetchone()
        if row is not None:
            return str(row[0])
        hole = hole_dirname(host, port)
        if self._claims is None:
            self._claims = _Claims(self._db)
        resolution = resolve(hole, selector, kind, owner, self._claims)
        self._begin()
        self._db.executemany(
            "INSERT OR REPLACE INTO claims VALUES (?, ?, ?, ?)",
            [(c.fold, c.path, c.kind, c.owner) for c in resolution.claims],
        )
        self._claims.remember(resolution.claims)
        return resolution.path

    # --- items ----------------------------------------------------------------
    def get(self, host: str, port: int, selector: bytes, kind: str) -> Entry | None:
        """The row of an item, or None."""
        self._live()
        _check_kind(kind)
        return self._row(_norm_host(host), port, selector, kind)

    def put(
        self,
        *,
        host: str,
        port: int,
        selector: bytes,
        item_type: bytes,
        body: bytes,
        terminator: bytes = b"",
        url: str | None = None,
        now: float | None = None,
        run_id: int | None = None,
    ) -> PutResult:
        """Store a fetched body; the row commits with the batch (``commit``).

        ``run_id``: also record the item as seen in that run (as ``mark_seen``).

        A new body is written at once (temp + rename).  A body that replaces
        one a committed row describes is staged next to it and renamed at
        ``commit`` (docs/store.md, "Durability").
        """
        kind = _kind_of(item_type)
        host = _norm_host(host)
        now = time.time() if now is None else now
        url = url or _gopher_url(host, port, item_type, selector)
        path = self.path_for(host, port, selector, kind)
        rel = _body_relpath(path, kind)
        size, digest = len(body), hashlib.sha256(body).hexdigest()
        old = self._row(host, port, selector, kind)
        self._begin()
        try:
            if old is None or not old.sha256:
                outcome = "new"
                self._write_now(rel, body)
                self._fresh.add(rel)
            elif old.sha256 == digest and old.size == size:
                outcome = "unchanged" if old.terminator == terminator else "changed"
                if not self._body_intact(rel, size):
                    self._write_now(rel, body)  # repair: the row already says these bytes
            else:
                outcome = "changed"
                if rel in self._fresh:
                    self._write_now(rel, body)  # no committed row describes it yet
                else:
                    self._stage(rel, body)
        except OSError as e:
            raise StoreError(f"cannot write {rel}: {e.strerror}", url) from e
        if old is None:
            self._db.execute(
                "INSERT INTO items (url, host, port, selector, kind, item_type, path, size,"
                " sha256, terminator, first_seen, last_fetched, last_changed, status, error,"
                " run_id, fetched_run) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,'ok',NULL,?,?)",
                (url, host, port, selector, kind, item_type, path, size, digest, terminator,
                 now, now, now, run_id, self._run_id),
            )  # fmt: skip
            first_seen = last_changed = now
        else:
            changed = outcome != "unchanged"
            self._db.execute(
                "UPDATE items SET url = ?, item_type = ?, path = ?, size = ?, sha256 = ?,"
                " terminator = ?, last_fetched = ?,"
                " last_changed = CASE WHEN ? THEN ? ELSE last_changed END,"
                " status = 'ok', error = NULL, fetched_run = ?,"
                " run_id = coalesce(?, run_id)"
                " WHERE host = ? AND port = ? AND selector = ? AND kind = ?",
                (url, item_type, path, size, digest, terminator, now, changed, now,
                 self._run_id, run_id, host, port, selector, kind),
            )  # fmt: skip
            first_seen = old.first_seen
            last_changed = now if changed else old.last_changed
        entry = Entry(
            url, host, port, selector, item_type, kind, path, size, digest, terminator,
            first_seen, now, last_changed, "ok", None,
        )  # fmt: skip
        return PutResult(entry, outcome)

    def read_body(self, entry: Entry) -> bytes:
        """The stored body of ``entry`` (for a menu: the raw menu bytes)."""
        if not entry.sha256:
            raise StoreError("no body stored", entry.url)
        rel = _body_relpath(entry.path, entry.kind)
        try:
            with open(self._abs(self._staged.get(rel, rel)), "rb") as f:
                return f.read()
        except OSError as e:
            raise StoreError(f"cannot read {rel}: {e.strerror}", entry.url) from e

    def mark_seen(self, host: str, port: int, selector: bytes, kind: str, run_id: int) -> None:
        """Record that a parent menu listed this item in run ``run_id``.

        A no-op for an item with no row; revives a ``'gone'`` row.
        """
        _check_kind(kind)
        self._begin()
        self._db.execute(
            "UPDATE items SET run_id = ?, status = CASE WHEN status != 'gone' THEN status"
            " WHEN sha256 != '' THEN 'ok' ELSE 'failed' END"
            " WHERE host = ? AND port = ? AND selector = ? AND kind = ?",
            (run_id, _norm_host(host), port, selector, kind),
        )

    def item_states(
        self, host: str, port: int, selectors: list[bytes], kind: str = "file"
    ) -> dict[bytes, tuple[bytes, str, float, float]]:
        """``selector -> (item_type, status, last_fetched, last_changed)`` of the items with a row.

        One query per 500 selectors: what the crawler asks of every menu's links.
        """
        _check_kind(kind)
        host = _norm_host(host)
        found: dict[bytes, tuple[bytes, str, float, float]] = {}
        for start in range(0, len(selectors), 500):
            chunk = selectors[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows = self._live().execute(
                "SELECT selector, item_type, status, last_fetched, last_changed FROM items"
                f" WHERE host = ? AND port = ? AND kind = ? AND selector IN ({marks})",
                (host, port, kind, *chunk),
            )
            for selector, item_type, status, last_fetched, last_changed in rows:
                found[bytes(selector)] = (bytes(item_type), status, last_fetched, last_changed)
        return found

    def mark_seen_many(
        self, host: str, port: int, selectors: list[bytes], kind: str, run_id: int
    ) -> None:
        """``mark_seen`` for many items of one hole at once."""
        _check_kind(kind)
        if not selectors:
            return
        self._begin()
        host = _norm_host(host)
        self._db.executemany(
            "UPDATE items SET run_id = ?, status = CASE WHEN status != 'gone' THEN status"
            " WHEN sha256 != '' THEN 'ok' ELSE 'failed' END"
            " WHERE host = ? AND port = ? AND selector = ? AND kind = ?",
            [(run_id, host, port, selector, kind) for selector in selectors],
        )

    def mark_failed(
        self,
        *,
        host: str,
        port: int,
        selector: bytes,
        item_type: bytes,
        error: str,
        url: str | None = None,
    ) -> None:
        """Record a failed fetch; keeps any stored body and its row fields.

        Status becomes ``'failed'`` only for an item never stored; an item
        with a body stays (or becomes again) ``'ok'`` with ``error`` set.
        """
        kind = _kind_of(item_type)
        host = _norm_host(host)
        url = url or _gopher_url(host, port, item_type, selector)
        if self._row(host, port, selector, kind) is not None:
            self._begin()
            self._db.execute(
                "UPDATE items SET error = ?, fetched_run = ?,"
                " status = CASE WHEN sha256 != '' THEN 'ok' ELSE 'failed' END"
                " WHERE host = ? AND port = ? AND selector = ? AND kind = ?",
                (error, self._run_id, host, port, selector, kind),
            )
            return
        path = self.path_for(host, port, selector, kind)
        self._begin()
        self._db.execute(
            "INSERT INTO items (url, host, port, selector, kind, item_type, path, size, sha256,"
            " terminator, first_seen, last_fetched, last_changed, status, error, run_id,"
            " fetched_run) VALUES (?,?,?,?,?,?,?,0,'',X'',?,0.0,0.0,'failed',?,NULL,?)",
            (url, host, port, selector, kind, item_type, path, time.time(), error, self._run_id),
        )

    def begin_run(self) -> int:
        """Start a crawl run; ``put`` and ``mark_failed`` stamp rows with it."""
        self._begin()
        cur = self._db.execute("INSERT INTO runs (started) VALUES (?)", (time.time(),))
        assert cur.lastrowid is not None
        self._run_id = cur.lastrowid
        return self._run_id

    def mark_gone(self, run_id: int, host: str, port: int, selector_prefix: bytes = b"") -> int:
        """Mark ``'gone'`` the rows of a hole neither listed nor fetched in ``run_id``.

        Only rows under ``selector_prefix`` are considered (the crawler's
        scope rule: the prefix itself and what follows it after a ``/``, so
        ``/a`` does not cover ``/ab``; ``b""`` and ``b"/"`` cover the hole):
        pass the start selector of a partial crawl.  Call it only after a
        complete crawl.  Never deletes files.
        """
        self._begin()
        sql = (
            "UPDATE items SET status = 'gone' WHERE host = ? AND port = ? AND status != 'gone'"
            " AND run_id IS NOT ? AND fetched_run IS NOT ?"
        )
        args: list[object] = [_norm_host(host), port, run_id, run_id]
        prefix = selector_prefix
        if prefix not in (b"", b"/"):
            base = prefix[:-1] if prefix.endswith(b"/") else prefix
            below = base + b"/"
            sql += " AND (selector = ? OR substr(selector, 1, ?) = ?)"
            args += [base, len(below), below]
        cur = self._db.execute(sql, args)
        return cur.rowcount

    def prune(self, host: str, port: int) -> int:
        """Delete the files and rows of the hole's ``'gone'`` items; returns the count.

        Rows and claims go first (committed), files after: a crash in between
        leaves orphan files, never rows without files.
        """
        host = _norm_host(host)
        self.commit()
        self._known_dirs.clear()
        if self._claims is not None:
            self._claims.forget()
        gone = self._db.execute(
            "SELECT id, selector, kind, path FROM items"
            " WHERE host = ? AND port = ? AND status = 'gone'",
            (host, port),
        ).fetchall()
        if not gone:
            return 0
        self._begin()
        unlink: list[str] = []
        parents: set[str] = set()
        for row_id, selector, kind, path in gone:
            owner = owner_key(host, port, bytes(selector), kind)
            self._db.execute("DELETE FROM items WHERE id = ?", (row_id,))
            if kind == "menu":
                unlink += [f"{path}/{MENU_BODY_NAME}", f"{path}/{MAP_NAME}"]
                self._db.execute("DELETE FROM aux WHERE path = ?", (f"{path}/{MAP_NAME}",))
                self._db.execute(
                    "UPDATE claims SET owner = NULL WHERE owner = ? AND fold = ?",
                    (owner, path.lower()),
                )
                parents.add(path)
            else:
                unlink.append(path)
                self._db.execute("DELETE FROM claims WHERE owner = ?", (owner,))
                if "/" in path:
                    parents.add(path.rsplit("/", 1)[0])
        # drop directory claims nobody needs any more, deepest level first
        rmdirs: list[str] = []
        levels: dict[int, set[str]] = {}
        for d in parents:
            levels.setdefault(d.count("/"), set()).add(d)
        for depth in range(max(levels), -1, -1):
            for d in sorted(levels.get(depth, ())):
                claim = _Claims(self._db).lookup(d.lower())
                if claim is None or claim.owner is not None or self._claimed_below(d.lower()):
                    continue
                self._db.execute("DELETE FROM claims WHERE fold = ?", (d.lower(),))
                rmdirs.append(d)
                if depth:
                    levels.setdefault(depth - 1, set()).add(d.rsplit("/", 1)[0])
        self.commit()
        for rel in unlink:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._abs(rel))
        for d in rmdirs:
            with contextlib.suppress(OSError):
                os.rmdir(self._abs(d))
        return len(gone)

    def entries(self, host: str | None = None, port: int | None = None) -> Iterator[Entry]:
        """Stream rows (all, one host's, or one hole's) in insertion order."""
        self._live()
        sql, args = f"SELECT {_ENTRY_COLS} FROM items", list[object]()
        where = []
        if host is not None:
            where.append("host = ?")
            args.append(_norm_host(host))
        if port is not None:
            where.append("port = ?")
            args.append(port)
        if where:
            sql += " WHERE " + " AND ".join(where)
        cursor = self._db.execute(sql + " ORDER BY id", args)
        try:
            while rows := cursor.fetchmany(256):
                for row in rows:
                    yield _entry(row)
        finally:
            cursor.close()

    def holes(self) -> list[tuple[str, int]]:
        """Every (host, port) with rows, sorted."""
        self._live()
        rows = self._db.execute("SELECT DISTINCT host, port FROM items ORDER BY host, port")
        return [(str(h), int(p)) for h, p in rows]

    # --- generated files and metadata -----------------------------------------
    def write_aux(self, relpath: str, data: bytes) -> None:
        """Atomically write a generated file (map, Atom feed) at ``ROOT/relpath``.

        ``relpath`` is trusted but checked: relative, no ``.``/``..``/empty
        components, not in ``.gophermirror/``, not a temp name, no symlink on
        the way out of ROOT.  Committed (fsynced) with the batch.
        """
        parts = relpath.split("/")
        if (
            not relpath
            or relpath.startswith("/")
            or any(p in ("", ".", "..") for p in parts)
            or parts[0] == STATE_DIR
            or parts[-1].startswith(TMP_PREFIX)
            or "\\" in relpath
            or "\0" in relpath
        ):
            raise StoreError("refusing an auxiliary path outside the mirror", relpath)
        if _Claims(self._live()).lookup(relpath.lower()) is not None:
            raise StoreError("refusing to overwrite a mirrored item", relpath)
        self._begin()
        try:
            self._write_now(relpath, data, clear=False)  # refuses symlinks on the way
        except OSError as e:
            raise StoreError(f"cannot write {relpath}: {e.strerror}", relpath) from e
        self._db.execute(
            "INSERT OR REPLACE INTO aux VALUES (?, ?, ?, ?)",
            (relpath, len(data), hashlib.sha256(data).hexdigest(), time.time()),
        )

    def get_meta(self, key: str) -> str | None:
        """A value a later layer stored with ``set_meta``."""
        self._live()
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        """Store a key-value pair; commits with the batch."""
        self._begin()
        self._db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    # --- the group commit -------------------------------------------------------
    def commit(self) -> None:
        """Make the batch durable: fsync files, then dirs, then commit the rows.

        Staged replacements are renamed after the rows commit (their renames
        are journalled in ``pending_renames``, redone on open after a crash).
        """
        if self._closed:
            raise StoreError("store is closed", self.root)
        try:
            if self.durable:
                for path in sorted(self._dirty_files):
                    _fsync_path(path)
                for path in sorted(self._dirty_dirs):
                    _fsync_path(path, directory=True)
            if self._db.in_transaction:
                self._db.execute("COMMIT")
            self._dirty_files.clear()
            self._dirty_dirs.clear()
            self._fresh.clear()
            if self._staged:
                self._apply_staged()
        except OSError as e:
            raise StoreError(f"commit failed: {e.strerror}", self.root) from e

    def _apply_staged(self) -> None:
        dirs = set()
        while self._staged:  # pop as we go: a failed rename can be retried
            rel, tmp = next(iter(self._staged.items()))
            final = self._abs(rel)
            self._replace(self._abs(tmp), final)
            del self._staged[rel]
            dirs.add(os.path.dirname(final))
        if self.durable:
            for d in sorted(dirs):
                _fsync_path(d, directory=True)
        self._db.execute("BEGIN IMMEDIATE")
        self._db.execute("DELETE FROM pending_renames")
        self._db.execute("COMMIT")

    # --- verify -----------------------------------------------------------------
    def verify(self, *, adopt: bool = False) -> VerifyReport:
        """Re-hash every stored body against its row and look for orphans.

        Streams rows and files.  ``adopt=True`` adds rows for orphan files
        whose path maps back to exactly one selector (docs/store.md); their
        item type is guessed and their terminator is unknown (b'').
        """
        self.commit()
        checked = ok = 0
        problems: list[Problem] = []
        for entry in self.entries():
            if not entry.sha256:
                continue
            checked += 1
            rel = _body_relpath(entry.path, entry.kind)
            problem = self._check_body(rel, entry)
            if problem is None:
                ok += 1
            else:
                problems.append(problem)
        adopted: list[Entry] = []
        for rel, damage in self._walk_orphans():
            if damage == "orphan" and adopt:
                new = self._adopt(rel)
                if new is not None:
                    adopted.append(new)
                    continue
            detail = "temporary file left behind" if damage == "tmp" else "no row describes it"
            problems.append(Problem(rel, None, damage, detail))
        if adopted:
            self.commit()
        return VerifyReport(checked, ok, tuple(problems), tuple(adopted))

    def _check_body(self, rel: str, entry: Entry) -> Problem | None:
        path = self._abs(rel)
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return Problem(rel, entry.url, "missing", "file is missing")
        if not stat.S_ISREG(st.st_mode):
            return Problem(rel, entry.url, "missing", "not a regular file")
        if st.st_size != entry.size:
            return Problem(rel, entry.url, "size", f"{st.st_size} bytes, row says {entry.size}")
        digest = _hash_file(path)
        if digest != entry.sha256:
            return Problem(rel, entry.url, "hash", f"sha256 {digest[:16]}..., row says "
                           f"{entry.sha256[:16]}...")  # fmt: skip
        return None

    def _hole_dirs(self) -> list[str]:
        names = {hole_dirname(h, p) for h, p in self.holes()}
        with os.scandir(self.root) as it:
            for e in it:
                if e.is_dir(follow_symlinks=False) and parse_hole_dirname(e.name) is not None:
                    names.add(e.name)
        return sorted(names)

    def _walk_orphans(self) -> Iterator[tuple[str, str]]:
        for hole in self._hole_dirs():
            for dirpath, _dirnames, filenames in os.walk(self._abs(hole)):
                reldir = os.path.relpath(dirpath, self.root).replace(os.sep, "/")
                for name in sorted(filenames):
                    rel = f"{reldir}/{name}"
                    if name.startswith(TMP_PREFIX):
                        yield rel, "tmp"
                    elif name in _GENERATED or self._is_aux(rel):
                        continue
                    elif not self._described(rel, name, reldir):
                        yield rel, "orphan"

    def _is_aux(self, rel: str) -> bool:
        return self._db.execute("SELECT 1 FROM aux WHERE path = ?", (rel,)).fetchone() is not None

    def _described(self, rel: str, name: str, reldir: str) -> bool:
        path, kind = (reldir, "menu") if name == MENU_BODY_NAME else (rel, "file")
        row = self._db.execute(
            "SELECT 1 FROM items WHERE path = ? AND kind = ? AND sha256 != '' LIMIT 1",
            (path, kind),
        ).fetchone()
        return row is not None

    def _adopt(self, rel: str) -> Entry | None:
        """Add a row for an orphan file, if its key can be known; None if not.

        The key is that of a row at this path that never stored a body, or
        else the one selector (with a leading ``/``) whose path this is.
        """
        parts = rel.split("/")
        kind = "file"
        if parts[-1] == MENU_BODY_NAME:
            kind, parts = "menu", parts[:-1]
        path = "/".join(parts)
        if os.path.islink(self._abs(rel)):
            return None
        row = self._db.execute(
            "SELECT host, port, selector, item_type FROM items WHERE path = ? AND kind = ?",
            (path, kind),
        ).fetchone()
        item_type: bytes | None = None
        if row is not None:
            host, port, selector, item_type = str(row[0]), int(row[1]), bytes(row[2]), bytes(row[3])
        else:
            hole = parse_hole_dirname(parts[0])
            raws = [unescape_component(p) for p in parts[1:]]
            if hole is None or any(r is None for r in raws) or (kind == "file" and not raws):
                return None
            host, port = hole
            selector = b"/" + b"/".join(r for r in raws if r is not None) if raws else b""
            owner = owner_key(host, port, selector, kind)
            if self._db.execute("SELECT 1 FROM claims WHERE owner = ?", (owner,)).fetchone():
                return None  # that key lives elsewhere
            if resolve(parts[0], selector, kind, owner, _Claims(self._db)).path != path:
                return None
        with open(self._abs(rel), "rb") as f:
            body = f.read()
        if kind == "menu":
            item_type = b"1"
        elif item_type is None:
            try:
                body.decode("utf-8")
                item_type = b"9" if b"\0" in body else b"0"
            except UnicodeDecodeError:
                item_type = b"9"
        if self.path_for(host, port, selector, kind) != path:
            return None
        entry = self.put(
            host=host, port=port, selector=selector, item_type=item_type, body=body
        ).entry
        note = "adopted by verify: terminator unknown" + ("" if row else ", item type guessed")
        self._db.execute(
            "UPDATE items SET error = ? WHERE host = ? AND port = ? AND selector = ? AND kind = ?",
            (note, host, port, selector, kind),
        )
        return attrs.evolve(entry, error=note)


# --------------------------------------------------------------------------
# Readers that need no lock (the built-in server, while a mirror run writes)
# --------------------------------------------------------------------------


def manifest_path(root: Path) -> Path:
    """``ROOT/.gophermirror/manifest.sqlite``."""
    return Path(root) / STATE_DIR / "manifest.sqlite"


def read_entries(root: Path) -> list[Entry]:
    """Every row with a stored body, read through a read-only SQLite connection.

    Read-only, and without the store's lock, so that a ``mirror`` run may
    write the store meanwhile (WAL readers see the last committed state).
    """
    path = manifest_path(root)
    if not path.is_file():
        raise StoreError("not a gophermirror store (no manifest)", root)
    uri = "file:" + quote(str(path)) + "?mode=ro"
    try:
        db = sqlite3.connect(uri, uri=True, check_same_thread=False)
    except sqlite3.Error as exc:
        raise StoreError(f"cannot open manifest: {exc}", path) from exc
    try:
        rows = db.execute(f"SELECT {_ENTRY_COLS} FROM items WHERE sha256 != '' ORDER BY id")
        return [_entry(row) for row in rows]
    except sqlite3.Error as exc:
        raise StoreError(f"cannot read manifest: {exc}", path) from exc
    finally:
        db.close()
