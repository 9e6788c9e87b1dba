"""pytest fixtures that serve fixture holes with the real Debian gopher peers.

Owns: fixtures only (the machinery is in ``tests/peers.py``).  Load them from
``tests/conftest.py`` with ``pytest_plugins = ["tests.peer_fixtures"]`` (or a
star import).  Must not touch: anything but the scratch roots it makes under
``peers.peer_roots_base()`` and the servers it starts, all removed or stopped
at teardown.

Every fixture that needs a peer calls ``require_peer``: missing peers fail
the test when the env var CI is set, and skip it otherwise.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.peers import (
    SERVERS,
    HoleOnDisk,
    PeerServer,
    build_fixture_hole,
    peer_root_dir,
    require_peer,
)

__all__ = [
    "HoleOnDisk",
    "gophernicus_hole",
    "hole",
    "mapped_hole",
    "peer_root",
    "pituophis_hole",
    "pygopherd_hole",
    "start_peer",
]


@pytest.fixture
def peer_root() -> Iterator[Path]:
    """A fresh empty directory that ``nobody`` can read, removed after the test."""
    root = peer_root_dir()
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _make_hole(*, gophermaps: bool) -> Iterator[HoleOnDisk]:
    root = peer_root_dir("hole-")
    try:
        yield HoleOnDisk(root=root, items=build_fixture_hole(root, gophermaps=gophermaps))
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def hole() -> Iterator[HoleOnDisk]:
    """The fixture hole without gophermaps (servers list directories themselves)."""
    yield from _make_hole(gophermaps=False)


@pytest.fixture(scope="module")
def mapped_hole() -> Iterator[HoleOnDisk]:
    """The fixture hole with explicit gophermaps at / and /feeds/news/eurasianet/."""
    yield from _make_hole(gophermaps=True)


def _serve(name: str, root: Path) -> Iterator[PeerServer]:
    require_peer(name)
    with SERVERS[name](root) as server:
        yield server


@pytest.fixture(scope="module")
def gophernicus_hole(hole: HoleOnDisk) -> Iterator[PeerServer]:
    """gophernicus (via socat, as nobody) serving ``hole`` on 127.0.0.1."""
    yield from _serve("gophernicus", hole.root)


@pytest.fixture(scope="module")
def pygopherd_hole(hole: HoleOnDisk) -> Iterator[PeerServer]:
    """pygopherd (as nobody) serving ``hole`` on 127.0.0.1."""
    yield from _serve("pygopherd", hole.root)


@pytest.fixture(scope="module")
def pituophis_hole(hole: HoleOnDisk) -> Iterator[PeerServer]:
    """pituophis's asyncio server serving ``hole`` on 127.0.0.1."""
    yield from _serve("pituophis", hole.root)


@pytest.fixture
def start_peer() -> Iterator[Callable[..., PeerServer]]:
    """Factory: ``start_peer("gophernicus", root, extra_args=["-nf"])`` -> a started server.

    Every server it started is stopped at teardown (and the stop is checked).
    """
    started: list[PeerServer] = []

    def start(name: str, root: Path, **kwargs: Any) -> PeerServer:
        require_peer(name)
        server = SERVERS[name](root, **kwargs)
        server.start()
        started.append(server)
        return server

    try:
        yield start
    finally:
        errors: list[BaseException] = []
        for server in reversed(started):
            try:
                server.stop()
            except Exception as e:  # stop them all, then report
                errors.append(e)
        if errors:
            raise errors[0]
