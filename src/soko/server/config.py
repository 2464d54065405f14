"""Where a server keeps its data: the ``--db`` and ``--store`` URLs, resolved and opened.

Defaults make one command start a working server: SQLite and a blob folder under
``$SOKO_DIR/server``. ``--db postgresql://…`` and ``--store s3://bucket/prefix`` scale it
out; any number of server processes may share one database and one store.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from soko import settings as settings_module
from soko.errors import ValidationError
from soko.metadata.engine import sqlite_url
from soko.storage.base import BlobStore
from soko.storage.local import LocalBlobStore

DEFAULT_PORT = 8765
SESSION_SECRET_ENV = "SOKO_SESSION_SECRET"
DEFAULT_MAX_MANIFEST_BYTES = 512 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class ServerConfig:
    db_url: str
    store_url: str
    s3_endpoint_url: str | None = None
    max_json_bytes: int = 16 * 1024 * 1024
    max_batch_bytes: int = 64 * 1024 * 1024
    max_manifest_bytes: int = DEFAULT_MAX_MANIFEST_BYTES
    """The largest manifest blob the server reads (and parses whole): a commit, a source
    version or a download of a larger one is refused. W&B's manifest of 20,000 files is
    about 4 MiB; the default leaves room for millions of entries."""
    presign_expiry_seconds: int = 3600
    access_log: str = "off"
    """``off``, ``text`` or ``json``: one line on stderr per request (see ``observe``)."""
    session_secret: str = ""
    """Signs the web UI's session cookies: ``SOKO_SESSION_SECRET``, or made at start (the
    worker processes of one server share it; a restart signs everyone out). Empty: the app
    makes one of its own."""

    @classmethod
    def resolve(
        cls,
        *,
        db: str | None,
        store: str | None,
        s3_endpoint_url: str | None = None,
        max_manifest_bytes: int | None = None,
        access_log: str = "off",
    ) -> ServerConfig:
        """Fill in the defaults under ``$SOKO_DIR/server`` for what was not given."""
        if max_manifest_bytes is not None and max_manifest_bytes < 1:
            raise ValidationError("--max-manifest-bytes must be a positive number of bytes.")
        root = settings_module.load().soko_dir / "server"
        db_url = db or sqlite_url(root / "soko.db")
        if db_url.startswith("sqlite:///"):
            Path(db_url[len("sqlite:///") :]).parent.mkdir(parents=True, exist_ok=True)
        return cls(
            db_url=db_url,
            store_url=store or os.fspath(root / "store"),
            s3_endpoint_url=s3_endpoint_url,
            max_manifest_bytes=max_manifest_bytes or DEFAULT_MAX_MANIFEST_BYTES,
            access_log=access_log,
            session_secret=os.environ.get(SESSION_SECRET_ENV) or secrets.token_urlsafe(32),
        )


def open_blob_store(config: ServerConfig) -> BlobStore:
    """The BlobStore that ``config.store_url`` names: a folder, ``file://…`` or ``s3://…``."""
    url = config.store_url
    if url.startswith("s3://"):
        from soko.storage.s3 import S3BlobStore

        return S3BlobStore.from_url(url, endpoint_url=config.s3_endpoint_url)
    if "://" in url and not url.startswith("file://"):
        raise ValidationError(
            f"Unsupported --store {url!r}: use a folder, file:///path or s3://bucket/prefix."
        )
    path = url[len("file://") :] if url.startswith("file://") else url
    return LocalBlobStore(Path(path).expanduser())
