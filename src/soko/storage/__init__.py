"""BlobStore implementations: content-addressed bytes. Imports core and errors only."""

from soko.storage.base import FORMAT_VERSION, BlobInfo, BlobStore, blob_key, digest_of_key
from soko.storage.local import LocalBlobStore
from soko.storage.memory import MemoryBlobStore

__all__ = [
    "FORMAT_VERSION",
    "BlobInfo",
    "BlobStore",
    "LocalBlobStore",
    "MemoryBlobStore",
    "blob_key",
    "digest_of_key",
]
