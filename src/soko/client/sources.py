"""Where the bytes of a blob are, when it is to be stored: :class:`BlobSource`.

A draft knows, for each blob it names, one of three places its bytes can be read from: the
bytes themselves, kept from hashing; a verified copy staged before the log returned; or the
file that was added. A backend's ``store_blobs`` takes these values and nothing else, and
reads each through :meth:`BlobSource.open` (or takes ``data``/``path`` directly where that
is faster), so the upload does not care which of the three it is.
"""

from __future__ import annotations

import io
import os
from typing import BinaryIO, NamedTuple

from soko.core.digests import Digest

_O_BINARY = getattr(os, "O_BINARY", 0)


class BlobSource(NamedTuple):
    """The bytes of blob *digest* (*size* bytes), to be stored.

    A tuple, not a dataclass: a draft of 20,000 small files makes one per file while it
    hashes them, and a tuple is built in C.
    """

    digest: Digest
    size: int
    path: str
    """The file that was added: named in errors, and read when nothing below is there."""
    data: bytes | None = None
    """The bytes themselves, kept from hashing: stored without reading a file."""
    copy: str | None = None
    """A verified copy of the bytes made before the log returned, read instead of *path*
    while it exists (a cache may have removed it since: then *path* is read, and refused
    by the store if it no longer has the digest)."""

    @property
    def readable_path(self) -> str:
        """The file to read the bytes from: the staged copy while it exists, else *path*."""
        if self.copy is not None and os.path.exists(self.copy):
            return self.copy
        return self.path

    def open(self) -> BinaryIO:
        """The bytes, as a binary stream from the start."""
        if self.data is not None:
            return io.BytesIO(self.data)
        return open(self.readable_path, "rb")  # the caller closes it

    def read(self) -> bytes:
        """All the bytes."""
        if self.data is not None:
            return self.data
        with open(self.readable_path, "rb") as handle:
            return handle.read()

    def read_as_hashed(self) -> bytes | None:
        """The bytes, when the file holds no more than the *size* it had when it was
        hashed; None when it holds more now (it changed since). One open and one read of
        *size* + 1 bytes, without a stat: what a batch of a thousand small files reads."""
        if self.data is not None:
            return self.data
        fd = os.open(self.readable_path, os.O_RDONLY | _O_BINARY)
        try:
            data = os.read(fd, self.size + 1)
        finally:
            os.close(fd)
        return None if len(data) > self.size else data
