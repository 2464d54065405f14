"""Which files of a version a page previews, and how: known by the file's name alone, so
that listing a folder reads nothing but the manifest."""

from __future__ import annotations

from typing import Literal

THUMBNAILED = frozenset({"png", "jpg", "jpeg", "gif", "webp", "bmp", "tif", "tiff"})
"""Images the server makes thumbnails of (it decodes them and encodes the thumbnail, so
the browser never decodes the file itself). Never SVG, a document that can hold script."""

PreviewKind = Literal["table", "image"]


def preview_kind(path: str) -> PreviewKind | None:
    """A Table (W&B's ``.table.json``) is previewed as pages of rows; an image, or W&B's
    ``.image-file.json`` of one, as a thumbnail; anything else not at all."""
    if path.endswith(".table.json"):
        return "table"
    if path.endswith(".image-file.json") or path.rpartition(".")[2].lower() in THUMBNAILED:
        return "image"
    return None
