"""The command line as scripts use it: a real process, a real loopback server."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import trio

from gophermirror.cli import build_parser
from gophermirror.testing import sample_hole, serve_hole

PY = sys.executable


def _subcommands(parser: object) -> list[list[str]]:
    import argparse

    found: list[list[str]] = []

    def walk(p: argparse.ArgumentParser, prefix: list[str]) -> None:
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    found.append([*prefix, name])
                    walk(sub, [*prefix, name])

    walk(parser, [])  # type: ignore[arg-type]
    return found


COMMANDS = _subcommands(build_parser())


def test_the_documented_commands_exist() -> None:
    names = {" ".join(c) for c in COMMANDS}
    assert {
        "fetch",
        "mirror",
        "verify",
        "serve",
        "export",
        "feed update",
        "feed list",
        "feed read",
        "feed watch",
    } <= names


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_command_has_help_and_config(command: list[str]) -> None:
    out = subprocess.run(
        [PY, "-m", "gophermirror", *command, "--help"], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert "usage:" in out.stdout
    if command != ["feed"]:
        assert "--config" in out.stdout


def test_usage_error_exits_2() -> None:
    out = subprocess.run(
        [PY, "-m", "gophermirror", "fetch", "http://x/"], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 2 and "not a gopher URL" in out.stderr


def test_bad_config_exits_2_naming_file_line_key(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[politeness]\ndelay = -1\n")
    out = subprocess.run(
        [PY, "-m", "gophermirror", "verify", "--config", str(bad)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2
    assert f"{bad}:2, key 'politeness.delay'" in out.stderr
    assert "Traceback" not in out.stderr


async def _run(*args: str) -> subprocess.CompletedProcess[bytes]:
    return await trio.run_process(
        [PY, "-m", "gophermirror", *args], capture_stdout=True, capture_stderr=True, check=False
    )


async def test_fetch_raw_json_and_readable(tmp_path: Path) -> None:
    hole = sample_hole(articles=3)
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            port = await nursery.start(serve_hole, hole)
            base = f"gopher://127.0.0.1:{port}"
            raw = await _run("fetch", "--raw", f"{base}/1/feeds/news/eurasianet")
            assert raw.returncode == 0
            assert raw.stdout == hole.reply(b"/feeds/news/eurasianet")
            article = await _run("fetch", "--raw", f"{base}/0/feeds/news/eurasianet/4789")
            assert article.stdout == hole.reply(b"/feeds/news/eurasianet/4789")
            doc = await _run("fetch", "--json", f"{base}/1/feeds/news/eurasianet")
            data = json.loads(doc.stdout)
            assert data["terminator"] == ".\r\n"
            links = [i for i in data["items"] if i["type"] == "0"]
            assert [i["selector"] for i in links] == [
                f"/feeds/news/eurasianet/{n}" for n in (4791, 4790, 4789)
            ]
            readable = await _run("fetch", f"{base}/1/")
            assert "[DIR] Feeds" in readable.stdout.decode()
            missing = await _run("fetch", f"{base}/0/nope")
            assert missing.returncode == 1
            assert (
                f"{base}/0/nope" in missing.stderr.decode() and b"Traceback" not in missing.stderr
            )
            nursery.cancel_scope.cancel()


async def test_mirror_verify_export_serve_round(tmp_path: Path) -> None:
    """mirror -> verify -> export (every dialect) -> tamper -> verify, all as processes."""
    hole = sample_hole(articles=3)
    root = tmp_path / "m"
    with trio.fail_after(90):
        async with trio.open_nursery() as nursery:
            port = await nursery.start(serve_hole, hole)
            url = f"gopher://127.0.0.1:{port}/1/feeds/news/eurasianet"
            done = await _run("mirror", url, "--root", str(root), "--delay", "0", "--json")
            assert done.returncode == 0, done.stderr
            assert json.loads(done.stdout)["items"]["new"] == 4
            assert (await _run("verify", str(root))).returncode == 0
            for fmt in ("gophernicus", "pygopherd", "bucktooth", "default"):
                out = await _run(
                    "export", str(root), "--format", fmt, "--advertise", "m.example:70"
                )
                assert out.returncode == 0, out.stderr
            doc = json.loads(
                (await _run("export", str(root), "--format", "default", "--json")).stdout
            )
            assert doc["menus"] >= 1
            article = root / f"127.0.0.1_{port}" / "feeds/news/eurasianet/4790"
            article.write_bytes(article.read_bytes() + b"tampered")
            damaged = await _run("verify", str(root), "--json")
            assert damaged.returncode == 1
            assert json.loads(damaged.stdout)["problems"][0]["path"].endswith("4790")
            nursery.cancel_scope.cancel()
