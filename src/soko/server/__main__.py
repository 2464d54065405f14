"""``python -m soko.server [options]``: the same as ``soko server`` (see ``--help``)."""

from soko.server.cli import main

raise SystemExit(main())
