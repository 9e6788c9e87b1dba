"""gophermirror: mirror gopher holes byte for byte, re-serve them, follow their feeds.

Layers, each importing only the ones before it:

protocol (sans-IO) -> client (trio) -> crawler (frontier, politeness)
-> store (paths, manifest) -> maps/serve/export -> feed -> config/cli.

The names re-exported here are the library's public surface.
"""

from .errors import (
    BadMenuLine as BadMenuLine,
)
from .errors import (
    BadSelector as BadSelector,
)
from .errors import (
    BadURL as BadURL,
)
from .errors import (
    ConfigError as ConfigError,
)
from .errors import (
    ConnectError as ConnectError,
)
from .errors import (
    ConnectionReset as ConnectionReset,
)
from .errors import (
    GopherError as GopherError,
)
from .errors import (
    GopherTimeout as GopherTimeout,
)
from .errors import (
    ServerError as ServerError,
)
from .errors import (
    StoreError as StoreError,
)
from .errors import (
    TooLarge as TooLarge,
)
from .protocol import (
    GopherURL as GopherURL,
)
from .protocol import (
    Menu as Menu,
)
from .protocol import (
    MenuItem as MenuItem,
)
from .protocol import (
    format_menu as format_menu,
)
from .protocol import (
    format_url as format_url,
)
from .protocol import (
    parse_menu as parse_menu,
)
from .protocol import (
    parse_url as parse_url,
)

__version__ = "0.1.0"
