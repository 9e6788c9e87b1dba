"""mirror.toml: defaults, the shipped file, and errors that name file, line and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from gophermirror.config import load_config, parse_config
from gophermirror.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]


def test_shipped_config_follows_eurasianet() -> None:
    config = load_config(REPO / "mirror.toml")
    assert config.root == REPO / "mirror"
    (feed,) = config.feeds
    assert feed.name == "eurasianet"
    assert str(feed.url) == "gopher://magical.fish:70/1/feeds/news/eurasianet"
    assert feed.interval == 3600
    assert config.politeness.concurrency == 2 and config.politeness.delay == 0.2
    assert config.politeness.max_size == 64 << 20


def test_no_file_gives_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    config = load_config(None)
    assert config.root == Path("mirror") and config.feeds == ()


def test_missing_explicit_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.toml")


@pytest.mark.parametrize(
    ("text", "line", "key", "words"),
    [
        ('root = "m"\n[politeness]\nconcurrency = 0\n', 3, "politeness.concurrency", "at least 1"),
        ('[politeness]\ndelay = "soon"\n', 2, "politeness.delay", "duration"),
        ("[politeness]\nspeed = 3\n", 2, "politeness.speed", "unknown key"),
        (
            '[[feed]]\nname = "a"\nurl = "gopher://h/1/"\n[[feed]]\nname = "b"\nurl = "http://x/"\n',
            6,
            "feed[1].url",
            "bad URL",
        ),
        ('[[feed]]\nname = "a"\n', 1, "feed[0].url", "missing"),
        ('[[feed]]\nname = "a b"\nurl = "gopher://h/"\n', 2, "feed[0].name", "letters"),
        (
            '[[feed]]\nname = "a"\nurl = "gopher://h/"\n[[feed]]\nname = "a"\nurl = "gopher://h/"\n',
            5,
            "feed[1].name",
            "duplicate",
        ),
        ('[mirror]\nexclude = ["("]\n', 2, "mirror.exclude", "regular expression"),
        ("colour = 1\n", 1, "colour", "unknown key"),
    ],
)
def test_errors_name_file_line_and_key(text: str, line: int, key: str, words: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(text, "my.toml")
    err = info.value
    assert (err.file, err.line, err.key) == ("my.toml", line, key)
    assert str(err).startswith(f"my.toml:{line}, key {key!r}: ")
    assert words in str(err)


def test_toml_syntax_error_names_line() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config('root = "m"\n[politeness\n', "x.toml")
    assert info.value.line == 2 and "x.toml:2" in str(info.value)


def test_durations_and_sizes() -> None:
    config = parse_config(
        '[politeness]\ndelay = "1.5s"\nmax_size = "2MiB"\n'
        '[[feed]]\nname = "f"\nurl = "gopher://h/1/f"\ninterval = "15m"\nmax_age = "7d"\n'
    )
    assert config.politeness.delay == 1.5
    assert config.politeness.max_size == 2 << 20
    assert config.feeds[0].interval == 900 and config.feeds[0].max_age_days == 7


def test_advertise() -> None:
    assert parse_config('advertise = "gopher.example.org:7070"\n').advertise == (
        "gopher.example.org",
        7070,
    )
    assert parse_config('advertise = "[::1]:70"\n').advertise == ("::1", 70)
    with pytest.raises(ConfigError) as info:
        parse_config('root = "m"\nadvertise = "nope"\n', "c.toml")
    assert (info.value.line, info.value.key) == (2, "advertise")
