"""``python -m kindlab.cli``: the ``kindlab`` command (how a guest runs it)."""

import sys

from kindlab.cli import main

sys.exit(main())
