"""Running one command and measuring it: wall time, exit status, peak RSS.

Owns: ``run_measured`` (a subprocess timed from spawn to reap), the peak
probe (``python_with_peak_probe``: a Python command that writes its own
``VmHWM`` when it exits), and the small statistics the rows use.  Must not
touch: processes it did not start.

Why not ``ru_maxrss`` from ``wait4`` or ``RUSAGE_CHILDREN``: Linux keeps a
process's ``maxrss`` across ``execve`` and seeds it with the old memory
image's high-water mark, so a child forked (or vforked) from the benchmark,
which holds the whole hole in memory, reports the benchmark's size, not its
own (measured: 83 MiB reported for a mirror whose VmHWM was 35 MiB).  The
``VmHWM`` of the new memory image is the child's own peak.
"""

from __future__ import annotations

import contextlib
import os
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import attrs

from .native import BenchError


@attrs.frozen
class Measured:
    """One finished command."""

    argv: tuple[str, ...]
    wall: float
    """Seconds from spawn to exit."""
    returncode: int
    stdout: bytes
    stderr: bytes
    peak_rss_kb: int
    """The child's own peak resident set (VmHWM, KiB); 0 without a peak probe."""


def run_measured(
    argv: Sequence[str],
    *,
    cwd: Path,
    timeout: float,
    stdin: Path | None = None,
    keep_stdout: bool = True,
    env: dict[str, str] | None = None,
    peak_file: Path | None = None,
) -> Measured:
    """Run ``argv`` to completion (killed after ``timeout`` s) and measure it.

    ``peak_file``: where a command made by ``python_with_peak_probe`` writes
    its VmHWM; it is read and removed.
    """
    if peak_file is not None:
        peak_file.unlink(missing_ok=True)
    out_path = cwd / f".measure-{os.getpid()}.out"
    err_path = cwd / f".measure-{os.getpid()}.err"
    cwd.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        stdin_file = stack.enter_context(open(stdin, "rb")) if stdin else subprocess.DEVNULL
        out = stack.enter_context(open(out_path if keep_stdout else os.devnull, "wb"))
        err = stack.enter_context(open(err_path, "wb"))
        start = time.perf_counter()
        process = subprocess.Popen(argv, cwd=cwd, stdin=stdin_file, stdout=out, stderr=err, env=env)
        deadline = start + timeout
        while True:
            pid, status, _usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                wall = time.perf_counter() - start
                break
            if time.perf_counter() > deadline:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(process.pid, signal.SIGKILL)
                os.wait4(process.pid, 0)
                process.returncode = -9
                raise BenchError(f"{argv[:4]} did not finish within {timeout:.0f} s")
            time.sleep(0.002)
        process.returncode = os.waitstatus_to_exitcode(status)
    stdout = out_path.read_bytes() if keep_stdout else b""
    stderr = err_path.read_bytes()
    for path in (out_path, err_path):
        path.unlink(missing_ok=True)
    peak = 0
    if peak_file is not None:
        try:
            peak = int(peak_file.read_text())
        except (OSError, ValueError):
            raise BenchError(f"{argv[:6]} did not report its peak RSS") from None
        peak_file.unlink()
    return Measured(tuple(argv), wall, process.returncode, stdout, stderr, peak)


PEAK_PROBE = """\
import atexit, runpy, sys
out = sys.argv.pop(1)
module = sys.argv.pop(1)
def report():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                with open(out, "w") as f:
                    f.write(line.split()[1])
atexit.register(report)
sys.argv[0] = module
runpy.run_module(module, run_name="__main__", alter_sys=True)
"""
"""Run a module as ``python -m`` would, and write the process's VmHWM (KiB) on exit."""


def python_with_peak_probe(module: str, args: Sequence[str], peak_file: Path) -> list[str]:
    """``python -m module args...`` that writes its own peak RSS to ``peak_file``."""
    return [sys.executable, "-c", PEAK_PROBE, str(peak_file), module, *args]


def median(values: Sequence[float]) -> float:
    """The median (the middle run of an odd count)."""
    return float(statistics.median(values))


def ratio(value: float, base: float) -> float:
    """``value / base``, 0 when there is no base."""
    return value / base if base > 0 else 0.0
