"""Test helpers for the serve/export layer: fill a store from a loopback hole.

Owns: ``store_hole`` (a small breadth-first walk over one hole with the real
client and ``Store.put``, independent of the crawler), ``raw_fetch`` (one
request over a raw trio socket, every byte until EOF) and ``open_fds``.
Must not touch: anything but 127.0.0.1 and the store root it is given.
"""

from __future__ import annotations

import os
from collections import deque
from pathlib import Path

import trio

from gophermirror.client import Limits, fetch
from gophermirror.errors import BadMenuLine
from gophermirror.protocol import MENU, NON_FETCHABLE_TYPES, GopherURL, parse_menu, url_for_item
from gophermirror.store import Store

LIMITS = Limits(connect_timeout=5, idle_timeout=5, total_timeout=10)


async def store_hole(
    root: Path,
    port: int,
    *,
    host: str = "127.0.0.1",
    start: bytes = b"",
    skip: frozenset[bytes] | set[bytes] = frozenset(),
    max_items: int = 500,
) -> dict[bytes, bytes]:
    """Fetch every item of the hole at ``host:port`` reachable from ``start`` into ``root``.

    Returns selector -> the exact bytes the origin sent.  Only links to the
    same host and port are followed, selectors in ``skip`` never; at most
    ``max_items`` fetches.
    """
    seen: set[tuple[bytes, bytes]] = {(MENU, start)}
    queue: deque[GopherURL] = deque([GopherURL(host, port, MENU, start)])
    raw: dict[bytes, bytes] = {}
    with Store.open(root, durable=False) as store:
        while queue and len(raw) < max_items:
            url = queue.popleft()
            result = await fetch(url, LIMITS, check_error=False)
            store.put(
                host=host,
                port=port,
                selector=url.selector,
                item_type=url.item_type,
                body=result.body,
                terminator=result.terminator,
            )
            raw[url.selector] = result.raw
            if url.item_type != MENU:
                continue
            for item in parse_menu(result.body).items:
                if item.type in NON_FETCHABLE_TYPES or item.is_url_link:
                    continue
                try:
                    link = url_for_item(item)
                except BadMenuLine:
                    continue
                key = (link.item_type, link.selector)
                if (link.host, link.port) == (host, port) and key not in seen:
                    if link.selector in skip:
                        continue
                    seen.add(key)
                    queue.append(link)
        store.commit()
    return raw


async def raw_fetch(port: int, request: bytes, *, host: str = "127.0.0.1") -> bytes:
    """Send ``request`` as is and return every byte until the server closes."""
    stream = await trio.open_tcp_stream(host, port)
    try:
        await stream.send_all(request)
        chunks = []
        while True:
            try:
                chunk = await stream.receive_some(65536)
            except trio.BrokenResourceError:
                break
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        await stream.aclose()


def open_fds() -> int:
    """How many file descriptors this process has open."""
    return len(os.listdir("/proc/self/fd"))
