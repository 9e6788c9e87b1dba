"""The crawl frontier: what is still to fetch in this run, kept on disk.

Owns: a disposable SQLite file beside the manifest that holds every
URL discovered in the current run (so each is fetched at most once per
run, and a 100,000-item hole costs no memory), handing out work in
batches, menus first.  Must not touch: the network, the manifest.
"""

from __future__ import annotations

import sqlite3
from collections import deque
from collections.abc import Iterable
from pathlib import Path

import attrs

from .protocol import MENU


@attrs.frozen
class Task:
    """One URL to fetch."""

    id: int
    host: str
    port: int
    selector: bytes
    item_type: bytes
    depth: int
    """Menu levels below the start URL it was found at."""
    tls: bool = False


_SCHEMA = """
CREATE TABLE IF NOT EXISTS queue (
    id INTEGER PRIMARY KEY,
    host TEXT NOT NULL,
    port INTEGER NOT NULL,
    selector BLOB NOT NULL,
    item_type BLOB NOT NULL,
    depth INTEGER NOT NULL,
    tls INTEGER NOT NULL DEFAULT 0,
    priority INTEGER NOT NULL,
    state INTEGER NOT NULL DEFAULT 0,
    UNIQUE (host, port, selector, item_type)
);
CREATE INDEX IF NOT EXISTS queue_pending ON queue (state, priority, id);
"""


@attrs.define(eq=False)
class Frontier:
    """A run's queue of URLs, unique by (host, port, selector, type).

    ``path`` None keeps it in memory (SQLite ``:memory:``; still compact).
    """

    path: Path | None = None
    _db: sqlite3.Connection = attrs.field(init=False)
    _buffer: deque[Task] = attrs.field(factory=deque, init=False)
    added: int = attrs.field(default=0, init=False)

    def __attrs_post_init__(self) -> None:
        target = ":memory:" if self.path is None else str(self.path)
        if self.path is not None:
            self.path.unlink(missing_ok=True)
        self._db = sqlite3.connect(target, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=OFF")
        self._db.execute("PRAGMA synchronous=OFF")
        self._db.execute("PRAGMA temp_store=MEMORY")
        self._db.executescript(_SCHEMA)

    def add_many(
        self, tasks: Iterable[tuple[str, int, bytes, bytes, int, bool]], *, done: bool = False
    ) -> int:
        """Queue URLs not seen before in this run; returns how many were new.

        ``done=True`` records them as handled already (stored, not to fetch),
        so that a later link to the same URL is neither fetched nor counted.
        """
        state = 2 if done else 0
        before = self._db.total_changes
        self._db.execute("BEGIN")
        try:
            self._db.executemany(
                "INSERT OR IGNORE INTO queue (host, port, selector, item_type, depth, tls,"
                " priority, state) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (h, p, s, t, d, int(tls), 0 if t == MENU else 1, state)
                    for h, p, s, t, d, tls in tasks
                ],
            )
        finally:
            self._db.execute("COMMIT")
        fresh = self._db.total_changes - before
        if not done:
            self.added += fresh
        return fresh

    def take(self) -> Task | None:
        """The next task (menus first, then in discovery order), or ``None``."""
        if not self._buffer:
            rows = self._db.execute(
                "SELECT id, host, port, selector, item_type, depth, tls FROM queue"
                " WHERE state = 0 ORDER BY priority, id LIMIT 256"
            ).fetchall()
            if not rows:
                return None
            self._db.executemany(
                "UPDATE queue SET state = 1 WHERE id = ?", [(row[0],) for row in rows]
            )
            self._buffer.extend(
                Task(i, h, p, bytes(s), bytes(t), d, bool(tls)) for i, h, p, s, t, d, tls in rows
            )
        return self._buffer.popleft()

    def close(self) -> None:
        """Drop the queue (its file too)."""
        self._db.close()
        if self.path is not None:
            self.path.unlink(missing_ok=True)
