"""``python -m gophermirror``: the same as the ``gophermirror`` command."""

import sys

from .cli import main

sys.exit(main())
