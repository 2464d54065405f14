"""``python -m soko.server [--host] [--port] [--db URL] [--store URL] [--s3-endpoint-url]
[--max-manifest-bytes BYTES]``."""

from soko.server.cli import main

raise SystemExit(main())
