"""Thumbnails of a version's images, made on the server with Pillow and kept by blob digest.

A page of a folder of images loads small thumbnails, not the images: each is scaled to fit
:data:`BOX` pixels and encoded again (JPEG, or PNG when it has transparency), so what the
browser decodes is always an image made by Pillow, whatever the file held. Thumbnails are
kept in memory by blob digest (a blob's content never changes), up to :data:`CACHE_BYTES`
in all, and at most :data:`_MAKING` are made at a time, so that a page of a hundred large
images does not hold a hundred of them in memory at once.

An image whose header announces more pixels than Pillow's ``MAX_IMAGE_PIXELS`` (a
decompression bomb: a few kilobytes that would decode to gigabytes) is never decoded, nor
is a file over :data:`MAX_SOURCE_BYTES`: its thumbnail is a placeholder saying it is too
large to preview; a file Pillow cannot read gets one saying so.
"""

from __future__ import annotations

import io
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from typing import BinaryIO, Literal

from PIL import Image

from soko.core.digests import Digest

BOX = 256
"""A thumbnail fits in a square of BOX pixels (a page shows it at half that, sharp on HiDPI)."""
MAX_SOURCE_BYTES = 32 * 1024 * 1024
CACHE_BYTES = 32 * 1024 * 1024
_MAKING = threading.BoundedSemaphore(2)
_JPEG_QUALITY = 85
_PILLOW_DEFAULT_MAX_PIXELS = 1024 * 1024 * 1024 // 4 // 3

log = logging.getLogger("soko.server")

Refusal = Literal["too-large", "unreadable"]
Opener = Callable[[], BinaryIO]


@dataclass(frozen=True, slots=True)
class Thumb:
    data: bytes
    media_type: str
    refused: Refusal | None = None
    """Why the image has no thumbnail; *data* is then the placeholder saying so."""


def placeholder(reason: Refusal) -> Thumb:
    svg = resources.files("soko.server.ui") / "static" / f"thumb-{reason}.svg"
    return Thumb(svg.read_bytes(), "image/svg+xml", refused=reason)


def make(opener: Opener, *, size: int | None) -> Thumb:
    """The thumbnail of the image *opener* reads (*size* bytes, when known)."""
    if size is not None and size > MAX_SOURCE_BYTES:
        return placeholder("too-large")
    with _MAKING:
        with opener() as reader:
            # Read whole (bounded): Pillow seeks, and not every store's reader can.
            data = reader.read(MAX_SOURCE_BYTES + 1)
        if len(data) > MAX_SOURCE_BYTES:
            return placeholder("too-large")
        return scale(data)


def max_pixels() -> int:
    """Pillow's ``MAX_IMAGE_PIXELS``; Pillow's default if a program turned it off."""
    return Image.MAX_IMAGE_PIXELS or _PILLOW_DEFAULT_MAX_PIXELS


def scale(data: bytes) -> Thumb:
    """*data* scaled to fit :data:`BOX`, or a placeholder."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            # Image.open reads the header only: the pixels are counted before decoding.
            # Pillow warns from MAX_IMAGE_PIXELS and refuses from twice that; soko
            # refuses from the first.
            if image.width * image.height > max_pixels():
                return placeholder("too-large")
            image.thumbnail((BOX, BOX))  # JPEG: decoded at a fraction of its size
            clear = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
            out = io.BytesIO()
            if clear:
                image.convert("RGBA").save(out, "PNG", optimize=True)
                return Thumb(out.getvalue(), "image/png")
            image.convert("RGB").save(out, "JPEG", quality=_JPEG_QUALITY)
            return Thumb(out.getvalue(), "image/jpeg")
    except Image.DecompressionBombError:
        return placeholder("too-large")
    except Exception as exc:
        # Pillow's decoders raise many kinds of errors on a malformed file (OSError,
        # SyntaxError, ValueError, struct.error ...); each is "not an image it can read".
        log.debug("no thumbnail: %s", exc)
        return placeholder("unreadable")


class Thumbs:
    """The thumbnails made last, by blob digest, up to :data:`CACHE_BYTES` in all."""

    def __init__(self, limit: int = CACHE_BYTES) -> None:
        self._kept: OrderedDict[Digest, Thumb] = OrderedDict()
        self._bytes = 0
        self._limit = limit
        self._lock = threading.Lock()

    def of(self, digest: Digest, opener: Opener, *, size: int | None) -> Thumb:
        with self._lock:
            thumb = self._kept.get(digest)
            if thumb is not None:
                self._kept.move_to_end(digest)
                return thumb
        thumb = make(opener, size=size)
        with self._lock:
            if digest not in self._kept:
                self._kept[digest] = thumb
                self._bytes += len(thumb.data)
            while self._bytes > self._limit and self._kept:
                _, dropped = self._kept.popitem(last=False)
                self._bytes -= len(dropped.data)
        return thumb

    def __len__(self) -> int:
        return len(self._kept)
