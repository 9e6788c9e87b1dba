"""`gophermirror fetch --raw` against the Debian servers: the bytes each sent.

Compared three ways: our CLI, `curl -s`, and a plain socket read.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from urllib.parse import quote_from_bytes

import pytest

from tests.peers import PeerServer, gopher_fetch, require_peer

pytestmark = pytest.mark.peer

SELECTORS = [
    ("1", "/"),
    ("1", "/feeds/news/eurasianet/"),
    ("0", "/feeds/news/eurasianet/4770"),
    ("0", "/misc/dots.txt"),
    ("0", "/misc/latin1.txt"),
    ("0", "/misc/crlf.txt"),
    ("0", "/misc/nonl.txt"),
    ("9", "/misc/random.bin"),
    ("I", "/misc/pixel.png"),
    ("0", "/misc/file with spaces.txt"),
    ("0", "/misc/café.txt"),
    ("0", "/misc/missing.txt"),
]


def _url(server: PeerServer, item_type: str, selector: str) -> str:
    path = quote_from_bytes(selector.encode(), safe="/")
    return f"gopher://127.0.0.1:{server.port}/{item_type}{path}"


@pytest.mark.parametrize("name", ["gophernicus", "pygopherd"])
def test_fetch_raw_equals_wire_and_curl(name: str, request: pytest.FixtureRequest) -> None:
    require_peer("curl")
    assert shutil.which("curl")
    server: PeerServer = request.getfixturevalue(f"{name}_hole")
    for item_type, selector in SELECTORS:
        url = _url(server, item_type, selector)
        wire = gopher_fetch(server.port, selector.encode())
        ours = subprocess.run(
            [sys.executable, "-m", "gophermirror", "fetch", "--raw", url],
            capture_output=True,
            timeout=60,
        )
        curl = subprocess.run(["curl", "-s", url], capture_output=True, timeout=60)
        assert ours.stdout == wire, (name, selector)
        assert curl.stdout == wire, (name, selector)
        is_error = wire.startswith(b"3") and b"\t" in wire.split(b"\n", 1)[0]
        assert ours.returncode == (1 if is_error else 0), (name, selector, ours.stderr)
        assert b"Traceback" not in ours.stderr
    if name == "pygopherd":  # it sends a type-3 item for a missing selector
        missing = subprocess.run(
            [sys.executable, "-m", "gophermirror", "fetch", _url(server, "0", "/misc/missing.txt")],
            capture_output=True,
            timeout=60,
        )
        assert missing.returncode == 1 and b"server error" in missing.stderr
