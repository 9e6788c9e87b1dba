"""gophermirror: mirror gopher holes byte for byte, re-serve them, follow their feeds.

Layers, each importing only the ones before it:

protocol (sans-IO) -> client (trio) -> crawler (frontier, politeness)
-> store (paths, manifest) -> maps/serve/export -> feed -> config/cli.

The names re-exported here are the library's public surface.
"""

from .errors import (
    BadMenuLine as BadMenuLine,
    BadSelector as BadSelector,
    BadURL as BadURL,
    ConfigError as ConfigError,
    ConnectError as ConnectError,
    ConnectionReset as ConnectionReset,
    GopherError as GopherError,
    GopherTimeout as GopherTimeout,
    ServerError as ServerError,
    StoreError as StoreError,
    TooLarge as TooLarge,
)
from .protocol import (
    GopherURL as GopherURL,
    Menu as Menu,
    MenuItem as MenuItem,
    format_menu as format_menu,
    format_url as format_url,
    parse_menu as parse_menu,
    parse_url as parse_url,
)

__version__ = "0.1.0"
