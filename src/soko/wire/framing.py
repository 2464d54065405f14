"""The binary framing of blob batches: many small blobs in one request or response body.

One HTTP round trip per 4 KiB file would cost more than the file; a batch carries up to a
few thousand of them. Each blob is one frame::

    <alg>:<hex> <size>\\n      ASCII header, e.g. "md5:5d41402abc4b2a76b9719d911017c592 5\\n"
    <size bytes>

and a body is frames back to back, nothing else. A reader checks the digest of every frame
itself (the framing says which blob the bytes claim to be, never that they are right).
Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterator

from soko.core.digests import Digest
from soko.errors import ValidationError
from soko.wire.base import format_digest, parse_digest

MEDIA_TYPE = "application/x-soko-blobs"
MAX_HEADER = 256
BATCH_BLOB_LIMIT = 16 * 1024 * 1024
"""The largest blob a batch may carry; larger ones travel alone."""
SMALL_BLOB = 1024 * 1024
"""Clients send and fetch blobs below this size in framed batches, larger ones alone."""


def frame_header(digest: Digest, size: int) -> bytes:
    return f"{format_digest(digest)} {size}\n".encode("ascii")


def read_frames(body: bytes, *, max_blob: int = BATCH_BLOB_LIMIT) -> list[tuple[Digest, bytes]]:
    """Every frame of a whole body, as :class:`FrameReader` cuts it, without copying the
    body into a buffer first: what a server does with a batch it has read."""
    frames: list[tuple[Digest, bytes]] = []
    start, end = 0, len(body)
    find = body.find
    while start < end:
        newline = find(b"\n", start, start + MAX_HEADER + 1)
        if newline < 0:
            if end - start > MAX_HEADER:
                raise ValidationError("Malformed blob batch: a frame header is too long.")
            raise _truncated()
        digest, size = _parse_header(body[start:newline], max_blob)
        stop = newline + 1 + size
        if stop > end:
            raise _truncated()
        frames.append((digest, body[newline + 1 : stop]))
        start = stop
    return frames


def _truncated() -> ValidationError:
    return ValidationError("Truncated blob batch: the body ended inside a frame.")


def _parse_header(line: bytes, max_blob: int) -> tuple[Digest, int]:
    try:
        text = line.decode("ascii")
        digest_text, size_text = text.split(" ")
        size = int(size_text)
    except (UnicodeDecodeError, ValueError):
        raise ValidationError(f"Malformed blob batch frame header: {line[:80]!r}") from None
    if size < 0 or size > max_blob:
        raise ValidationError(
            f"Blob batch frame of {size} bytes; a batch carries blobs of at most {max_blob} bytes."
        )
    return parse_digest(digest_text), size


class FrameReader:
    """Cuts a byte stream fed in arbitrary chunks into whole ``(digest, bytes)`` frames."""

    def __init__(self, *, max_blob: int = BATCH_BLOB_LIMIT) -> None:
        self._buffer = bytearray()
        self._max_blob = max_blob
        self._header: tuple[Digest, int] | None = None

    def feed(self, chunk: bytes) -> Iterator[tuple[Digest, bytes]]:
        """Add *chunk*; yield every frame it completes."""
        self._buffer += chunk
        while True:
            if self._header is None:
                end = self._buffer.find(b"\n", 0, MAX_HEADER + 1)
                if end < 0:
                    if len(self._buffer) > MAX_HEADER:
                        raise ValidationError("Malformed blob batch: a frame header is too long.")
                    return
                self._header = _parse_header(bytes(self._buffer[:end]), self._max_blob)
                del self._buffer[: end + 1]
            digest, size = self._header
            if len(self._buffer) < size:
                return
            data = bytes(self._buffer[:size])
            del self._buffer[:size]
            self._header = None
            yield digest, data

    def close(self) -> None:
        """Raise when the stream ended inside a frame."""
        if self._header is not None or self._buffer:
            raise _truncated()
