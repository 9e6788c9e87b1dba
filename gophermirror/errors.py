"""The typed errors of gophermirror.

Owns: the ``GopherError`` family.  Every error a user can meet is one of
these, carries the URL (or file) it is about, and prints as one clear line.
Nothing here does I/O.
"""

from __future__ import annotations


class GopherError(Exception):
    """Base of every gophermirror error; ``url`` names what it is about."""

    def __init__(self, message: str, url: object | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.url = None if url is None else str(url)

    def __str__(self) -> str:
        if self.url:
            return f"{self.url}: {self.message}"
        return self.message


# --- the remote side did something wrong (protocol) -----------------------
class ProtocolError(GopherError):
    """Bytes from a peer (or a user) that do not parse."""


class BadMenuLine(ProtocolError):
    """A menu line that cannot be read; ``lineno`` counts from 1."""

    def __init__(self, message: str, url: object | None = None, lineno: int | None = None) -> None:
        if lineno is not None:
            message = f"menu line {lineno}: {message}"
        super().__init__(message, url)
        self.lineno = lineno


class BadURL(ProtocolError):
    """A gopher URL that does not follow RFC 4266."""


class BadSelector(ProtocolError):
    """A selector that cannot be sent (TAB, CR or LF inside)."""


# --- talking to a server ---------------------------------------------------
class NetworkError(GopherError):
    """The connection failed."""


class ConnectError(NetworkError):
    """The server refused or could not be reached."""


class GopherTimeout(NetworkError):
    """The server did not answer (or finish) in time."""


class ConnectionReset(NetworkError):
    """The server broke the connection mid-reply."""


class TooLarge(GopherError):
    """The reply grew past the size cap; nothing of it is kept."""


class ServerError(GopherError):
    """The server answered with an error item (type 3)."""


class RobotsDisallowed(GopherError):
    """robots.txt of the host forbids this selector."""


# --- local side ------------------------------------------------------------
class StoreError(GopherError):
    """The mirror store is damaged or cannot be written."""


class ConfigError(GopherError):
    """A bad config file or command line; says file, line and key."""

    def __init__(
        self,
        message: str,
        file: str | None = None,
        line: int | None = None,
        key: str | None = None,
    ) -> None:
        where = []
        if file:
            where.append(str(file) + (f":{line}" if line else ""))
        if key:
            where.append(f"key {key!r}")
        super().__init__(message if not where else f"{', '.join(where)}: {message}")
        self.file = file
        self.line = line
        self.key = key
