"""The bare trio fetch loop: the fastest a trio program can walk a list of selectors.

Owns: one baseline of the benchmark, run in its own process like the mirror
(``python -m bench.trio_loop --port P --concurrency C --selectors FILE``):
C tasks take selectors from one list and for each connect to 127.0.0.1,
send the selector, read to EOF, discard and close: with trio's streams
(the baseline of the targets), or with ``--raw`` bare ``trio.socket`` calls
(a floor, shown for reference).  Nothing is parsed or
stored.  Prints one JSON object: requests, bytes, seconds.  Must not touch
any address but 127.0.0.1.
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import trio

HOST = "127.0.0.1"


async def fetch_all(
    port: int, selectors: Sequence[bytes], concurrency: int, timeout: float, raw: bool = False
) -> tuple[int, int]:
    """Fetch every selector over ``concurrency`` connections at once; (requests, bytes).

    The loop uses trio's streams (``open_tcp_stream``, ``send_all``,
    ``receive_some``, ``aclose_forcefully``), as a trio program ordinarily
    does; with ``raw`` it uses bare ``trio.socket`` calls instead.
    """
    queue: Iterator[bytes] = iter(selectors)
    counts = [0, 0]

    async def worker() -> None:
        for selector in queue:
            stream = await trio.open_tcp_stream(HOST, port)
            try:
                await stream.send_all(selector + b"\r\n")
                while chunk := await stream.receive_some(65536):
                    counts[1] += len(chunk)
            finally:
                await trio.aclose_forcefully(stream)
            counts[0] += 1

    async def socket_worker() -> None:
        for selector in queue:
            # trio's socket layer, no stream wrapper and no name resolution:
            # the least a trio program can do per request.
            with trio.socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                await sock.connect((HOST, port))
                request = selector + b"\r\n"
                while request:
                    request = request[await sock.send(request) :]
                while chunk := await sock.recv(65536):
                    counts[1] += len(chunk)
            counts[0] += 1

    with trio.fail_after(timeout):
        async with trio.open_nursery() as nursery:
            for _ in range(concurrency):
                nursery.start_soon(socket_worker if raw else worker)
    return counts[0], counts[1]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the loop once and print its figures as JSON."""
    parser = argparse.ArgumentParser(prog="python -m bench.trio_loop")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--concurrency", type=int, required=True)
    parser.add_argument("--selectors", type=Path, required=True, help="one selector a line")
    parser.add_argument("--timeout", type=float, default=600.0, help="give up after SECONDS")
    parser.add_argument("--raw", action="store_true", help="bare trio.socket calls, no streams")
    args = parser.parse_args(argv)
    selectors = args.selectors.read_bytes().split(b"\n")[:-1]
    start = time.perf_counter()
    requests, size = trio.run(
        fetch_all, args.port, selectors, args.concurrency, args.timeout, args.raw
    )
    seconds = time.perf_counter() - start
    json.dump({"requests": requests, "bytes": size, "seconds": seconds}, sys.stdout)
    sys.stdout.write("\n")
    return 0 if requests == len(selectors) else 1


if __name__ == "__main__":
    sys.exit(main())
