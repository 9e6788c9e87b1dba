"""Crash safety of ``gophermirror mirror``: SIGKILL at any moment loses nothing stored.

The command runs as it would for a user (``python -m gophermirror mirror URL
--root R --delay 0 --quiet``) against an in-memory origin of a few hundred
articles that grows and changes between trials, and is killed at random
moments.  Four more trials kill it deterministically inside the manifest
write: a wrapper (``COMMIT_KILLER``) wraps ``Store.commit`` and SIGKILLs the
process after the fsyncs, just before or just after SQLite's COMMIT, in the
crawl's commit or in the maps' commit.

After each kill, before anything reopens the store, every file on disk is
whole (its bytes are a body the origin served); then, once the store is
reopened (its recovery runs), ``verify`` finds no row without its file and
no wrong hash (only orphans: files whose rows never committed), and every
row holds exactly what the origin sent.  Across runs, no document that was
stored is ever requested again.
"""

from __future__ import annotations

import os
import random
import signal
import sys
import textwrap
import time
from pathlib import Path

import pytest
import trio

from gophermirror.article import sample_article
from gophermirror.paths import MAP_NAME, STATE_DIR, TMP_PREFIX
from gophermirror.protocol import split_terminator
from gophermirror.store import Store
from gophermirror.testing import FEED_SELECTOR, MemoryHole, feed_menu_lines, sample_hole, serve_hole

HOST = "127.0.0.1"
FIRST = 4789
ARTICLES = 300
TRIALS = 20
MENUS = {b"", b"/feeds", b"/feeds/news", FEED_SELECTOR}

COMMIT_KILLER = textwrap.dedent(
    """
    import os, signal, sys
    from gophermirror import store as store_module
    from gophermirror.cli import main

    target, when = int(os.environ["KILL_AT_COMMIT"]), os.environ["KILL_WHEN"]
    seen = 0
    real_commit = store_module.Store.commit

    def die():
        os.kill(os.getpid(), signal.SIGKILL)

    class Connection:
        '''The manifest connection, with a SIGKILL just before or after COMMIT.'''

        def __init__(self, db):
            self._db = db

        def execute(self, sql, *args):
            if sql == "COMMIT" and when == "before":
                die()
            result = self._db.execute(sql, *args)
            if sql == "COMMIT" and when == "after":
                die()
            return result

        def __getattr__(self, name):
            return getattr(self._db, name)

    def commit(self):
        # Count only commits with rows to write; the fsyncs run first, inside.
        global seen
        if not self._db.in_transaction:
            return real_commit(self)
        seen += 1
        if seen != target:
            return real_commit(self)
        self._db = Connection(self._db)
        return real_commit(self)

    store_module.Store.commit = commit
    sys.exit(main(sys.argv[1:]))
    """
)


class Origin:
    """The sample hole, grown and changed between trials; every body it ever served."""

    def __init__(self) -> None:
        self.hole: MemoryHole = sample_hole(articles=ARTICLES, first=FIRST)
        self.newest = FIRST + ARTICLES - 1
        self.served: set[bytes] = set()
        """Every body (terminator split off) any selector has had."""

    def remember(self) -> None:
        for reply in self.hole.replies.values():
            self.served.add(reply)
            self.served.add(split_terminator(reply)[0])

    def grow(self, rng: random.Random) -> None:
        """A few new articles, and the feed menu changes (a staged rename for the store)."""
        for _ in range(rng.randrange(10, 40)):
            self.newest += 1
            self.hole.add(FEED_SELECTOR + b"/%d" % self.newest, sample_article(self.newest))
        numbers = range(self.newest, FIRST - 1, -1)
        self.hole.add_menu(FEED_SELECTOR, feed_menu_lines(numbers))
        self.remember()


def mirror_command(url: str, root: Path) -> list[str]:
    return ["mirror", url, "--root", str(root), "--delay", "0", "--quiet"]


async def run_killed(
    command: list[str], cwd: Path, after: float | None, env: dict[str, str] | None = None
) -> int:
    """Run ``command``; SIGKILL it ``after`` seconds (None: let it end); its return code."""
    proc = await trio.lowlevel.open_process(command, cwd=cwd, env=env)
    try:
        with trio.fail_after(60):
            if after is not None:
                with trio.move_on_after(after):
                    await proc.wait()
                if proc.returncode is None:
                    proc.send_signal(signal.SIGKILL)
            return await proc.wait()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


def check_files_whole(root: Path, origin: Origin) -> None:
    """Before any recovery: every mirrored file holds a whole body the origin served."""
    for dirpath, dirnames, filenames in os.walk(root):
        if Path(dirpath) == root and STATE_DIR in dirnames:
            dirnames.remove(STATE_DIR)
        for name in filenames:
            path = Path(dirpath) / name
            if name.startswith(TMP_PREFIX):
                continue  # swept on the next open
            data = path.read_bytes()
            if name == MAP_NAME:
                assert data.endswith(b"\n"), f"partial gophermap {path}"
            else:
                assert data in origin.served, f"partial or foreign file {path}"


def stored_documents(root: Path, origin: Origin) -> set[bytes]:
    """Reopen (recovery runs), verify, check every row; the documents stored."""
    port = origin.hole.port
    with Store.open(root) as store:
        report = store.verify()
        damage = [p for p in report.problems if p.kind != "orphan"]
        assert damage == [], damage
        documents = set()
        for entry in store.entries():
            if not entry.sha256:
                continue
            raw = store.read_body(entry) + entry.terminator
            assert raw in origin.served, entry.url
            if entry.kind == "file" and entry.status == "ok":
                assert (entry.host, entry.port) == (HOST, port)
                documents.add(entry.selector)
    for dirpath, _dirs, files in os.walk(root):
        assert not [f for f in files if f.startswith(TMP_PREFIX)], dirpath
    return documents


@pytest.mark.slow
async def test_sigkill_at_random_moments_and_in_the_commit(tmp_path: Path) -> None:
    rng = random.Random(1436)
    origin = Origin()
    origin.remember()
    root = tmp_path / "m"
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    python = [sys.executable, "-m", "gophermirror"]
    killer = [sys.executable, "-c", COMMIT_KILLER]
    kills = {"random": 0, "finished": 0, "commit": 0}
    with trio.fail_after(150):
        async with trio.open_nursery() as nursery:
            port = await nursery.start(serve_hole, origin.hole)
            origin.remember()
            url = f"gopher://{HOST}:{port}/1"
            # How long one whole run takes here: kills are spread over 30-110 % of
            # the last uninterrupted run, so most land mid-run whatever the machine
            # (the first 30 % is mostly the interpreter starting).
            start = time.monotonic()
            scratch = mirror_command(url, tmp_path / "scratch")
            assert await run_killed([*python, *scratch], cwd, None, env) == 0
            estimate = time.monotonic() - start
            plan: list[tuple[int, str] | None] = [None] * TRIALS  # None: a random moment
            for at, (commit, when) in zip(
                sorted(rng.sample(range(TRIALS), 4)),
                [(1, "before"), (1, "after"), (2, "before"), (2, "after")],
                strict=True,
            ):
                plan.insert(at, (commit, when))
            stored: set[bytes] = set()
            for how in plan:
                origin.hole.requests.clear()
                if how is None:
                    after = rng.uniform(0.3 * estimate, 1.1 * estimate)
                    start = time.monotonic()
                    code = await run_killed([*python, *mirror_command(url, root)], cwd, after, env)
                    if code == 0:
                        estimate = time.monotonic() - start
                    kills["random" if code == -signal.SIGKILL else "finished"] += 1
                else:
                    commit_env = {**env, "KILL_AT_COMMIT": str(how[0]), "KILL_WHEN": how[1]}
                    code = await run_killed(
                        [*killer, *mirror_command(url, root)], cwd, None, commit_env
                    )
                    assert code == -signal.SIGKILL, (how, code)
                    kills["commit"] += 1
                assert code in (0, -signal.SIGKILL), code
                refetched = {s for s in origin.hole.requests if s in stored} - MENUS
                assert refetched == set(), sorted(refetched)[:5]
                check_files_whole(root, origin)
                now = stored_documents(root, origin)
                assert now >= stored, "a stored document was lost"
                stored = now
                origin.grow(rng)
            # A last, whole run: everything the origin has, byte for byte.
            origin.hole.requests.clear()
            assert await run_killed([*python, *mirror_command(url, root)], cwd, None, env) == 0
            assert not ({s for s in origin.hole.requests if s in stored} - MENUS)
            nursery.cancel_scope.cancel()
    assert kills["random"] >= TRIALS // 4, kills
    with Store.open(root) as store:
        assert store.verify().problems == ()
        rows = {
            e.selector: store.read_body(e) + e.terminator
            for e in store.entries()
            if e.status == "ok"
        }
    assert rows == origin.hole.replies
