"""The id a blob store keeps of the metadata database it belongs to: a ``store_id`` object.

A store's blobs are referenced by exactly one metadata database; garbage collection run for
another database would delete blobs the first one needs. So when a pair is first opened,
one random id is written into both (the database's ``store_identity`` row, and the store's
``store_id`` object here), and every later open compares them (``soko.service.identity``).

The id is not a blob, and the BlobStore contract stays about blobs: this module reads and
writes it for the stores that persist it (a folder: a file beside ``format_version``; S3:
an object beside it under the prefix; memory: an attribute). A store of another kind has
no id, and no pair is checked for it.

This module imports only the standard library, :mod:`soko.errors` and the store classes.
"""

from __future__ import annotations

import os
import tempfile
from typing import Any

from soko.errors import StoreError
from soko.storage.base import BlobStore
from soko.storage.local import LocalBlobStore
from soko.storage.memory import MemoryBlobStore
from soko.storage.s3 import S3BlobStore

ID_NAME = "store_id"


def supports_id(blobs: BlobStore) -> bool:
    return isinstance(blobs, LocalBlobStore | MemoryBlobStore | S3BlobStore)


def read_id(blobs: BlobStore) -> str | None:
    """The id stored in *blobs*, or None when it has none (or cannot keep one)."""
    if isinstance(blobs, LocalBlobStore):
        try:
            with open(os.path.join(blobs.root, ID_NAME), encoding="ascii") as stream:
                return stream.read(200).strip() or None
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as exc:
            raise StoreError(f"Cannot read the id of the store {blobs.root}: {exc}") from exc
    if isinstance(blobs, MemoryBlobStore):
        found: str | None = getattr(blobs, "_soko_store_id", None)
        return found
    if isinstance(blobs, S3BlobStore):
        client: Any = blobs.client
        try:
            body = client.get_object(Bucket=blobs.bucket, Key=blobs.prefix + ID_NAME)
        except client.exceptions.NoSuchKey:
            return None
        text: str = body["Body"].read(200).decode("ascii", errors="replace").strip()
        return text or None
    return None


def write_id(blobs: BlobStore, store_id: str) -> None:
    """Record *store_id* in *blobs* (atomically for a folder: temp file, fsync, rename)."""
    data = f"{store_id}\n"
    if isinstance(blobs, LocalBlobStore):
        fd, temp = tempfile.mkstemp(prefix=".store_id.", dir=blobs.root)
        try:
            with os.fdopen(fd, "w", encoding="ascii") as stream:
                stream.write(data)
                stream.flush()
                os.fsync(stream.fileno())
            os.replace(temp, os.path.join(blobs.root, ID_NAME))
        except OSError as exc:
            if os.path.exists(temp):
                os.unlink(temp)
            raise StoreError(f"Cannot write the id of the store {blobs.root}: {exc}") from exc
    elif isinstance(blobs, MemoryBlobStore):
        blobs._soko_store_id = store_id  # type: ignore[attr-defined]
    elif isinstance(blobs, S3BlobStore):
        blobs.client.put_object(
            Bucket=blobs.bucket, Key=blobs.prefix + ID_NAME, Body=data.encode("ascii")
        )
