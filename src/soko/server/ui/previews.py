"""The previews of a version's files: a Table as pages of rows, an image as a thumbnail.

``/v/ID/table?path=P&page=N`` shows rows of a ``.table.json`` file (:mod:`.tables`);
``/v/ID/thumb?path=P`` answers the thumbnail of an image, or of the image a W&B
``.image-file.json`` names (:mod:`.thumbs`). Both check the viewer's role as every page
does, and read the file's blob as a stream.
"""

from __future__ import annotations

import json
from typing import BinaryIO

from fastapi import APIRouter, Request
from fastapi.responses import Response

from soko.core.manifest import Entry
from soko.core.records import VersionRecord
from soko.errors import NotFoundError, ValidationError
from soko.server.state import ServerState
from soko.server.ui import tables, thumbs
from soko.server.ui.files import VersionFiles
from soko.server.ui.kinds import preview_kind
from soko.server.ui.pages import State, UIRoute, UIViewer
from soko.server.ui.render import page

router = APIRouter(route_class=UIRoute, include_in_schema=False)

MAX_PAGE = 10**8
IMAGE_FILE_MAX_BYTES = 1024 * 1024
"""A ``.image-file.json`` is a few hundred bytes; a larger one is not read."""
THUMB_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    # A thumbnail is of a blob, whose content never changes; private: it needs a sign-in.
    "Cache-Control": "private, max-age=86400",
    # A placeholder is SVG: opened on its own, it still runs and loads nothing.
    "Content-Security-Policy": "default-src 'none'",
}


def _tree(request: Request, state: ServerState, record: VersionRecord) -> VersionFiles:
    return VersionFiles(state, record)


def _page_number(request: Request) -> int:
    text = request.query_params.get("page") or "1"
    try:
        number = int(text)
    except ValueError:
        number = 0
    if not 1 <= number <= MAX_PAGE:
        raise ValidationError(f"page must be a whole number from 1 to {MAX_PAGE}, not {text!r}.")
    return number


def _stored(tree: VersionFiles, record: VersionRecord, path: str) -> Entry:
    entry = tree.entry(path)
    if entry is None:
        raise NotFoundError(f"{record.qualified_name} has no file {path!r}.")
    return entry


def _opener(state: ServerState, entry: Entry) -> tables.Opener:
    digest = entry.blob_digest()

    def open_blob() -> BinaryIO:
        return state.store.blobs.open(digest)

    return open_blob


@router.get("/v/{version_id}/table")
def table(request: Request, version_id: str, state: State, viewer: UIViewer) -> Response:
    record = state.readable_version(viewer.principal, version_id)
    path = request.query_params.get("path", "")
    number = _page_number(request)
    entry = _stored(_tree(request, state, record), record, path)
    if preview_kind(path) != "table" or entry.is_reference:
        raise NotFoundError(f"{path!r} is not a table of this version that soko holds.")
    shapes: tables.Shapes = request.app.state.ui_table_shapes
    opener = _opener(state, entry)
    shape = shapes.of(entry.blob_digest(), opener, path=path)
    found = tables.read_page(opener, shape, path=path, number=number)
    if number > 1 and not found.rows:
        raise NotFoundError(f"The table {path!r} has no page {number}.")
    return page(
        request,
        "table.html",
        viewer,
        v=record,
        path=path,
        crumbs=_folders(path),
        table=found,
        page_no=number,
        per_page=tables.ROWS_PER_PAGE,
    )


def _folders(path: str) -> list[tuple[str, str]]:
    """(name, path) of each folder above the file *path*."""
    parts = path.split("/")[:-1]
    return [(part, "/".join(parts[: i + 1])) for i, part in enumerate(parts) if part]


@router.get("/v/{version_id}/thumb")
def thumbnail(request: Request, version_id: str, state: State, viewer: UIViewer) -> Response:
    record = state.readable_version(viewer.principal, version_id)
    path = request.query_params.get("path", "")
    tree = _tree(request, state, record)
    entry: Entry | None = _stored(tree, record, path)
    if preview_kind(path) != "image":
        raise NotFoundError(f"{path!r} is not an image of this version.")
    if entry is not None and path.endswith(".image-file.json"):
        entry = _image_of(state, tree, entry)
    if entry is None or entry.is_reference:
        # Not an image soko holds the bytes of (a reference, or a broken image-file).
        return _thumb_response(thumbs.placeholder("unreadable"), None)
    digest = entry.blob_digest()
    etag = f'"{digest.hex}-{thumbs.BOX}"'  # another size of thumbnail, another tag
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers={"ETag": etag, **THUMB_HEADERS})
    cache: thumbs.Thumbs = request.app.state.ui_thumbs
    return _thumb_response(cache.of(digest, _opener(state, entry), size=entry.size), etag)


def _image_of(state: ServerState, tree: VersionFiles, entry: Entry) -> Entry | None:
    """The entry of the image a W&B ``.image-file.json`` names (its ``path``, from the
    top of the version), or None."""
    if entry.is_reference or (entry.size or 0) > IMAGE_FILE_MAX_BYTES:
        return None
    with state.store.blobs.open(entry.blob_digest()) as reader:
        raw = reader.read(IMAGE_FILE_MAX_BYTES + 1)
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
    target = data.get("path") if isinstance(data, dict) else None
    if not isinstance(target, str) or preview_kind(target) != "image":
        return None
    if target.endswith(".image-file.json"):
        return None  # never a chain of them
    return tree.entry(target)


def _thumb_response(thumb: thumbs.Thumb, etag: str | None) -> Response:
    headers = dict(THUMB_HEADERS)
    if etag is not None:
        headers["ETag"] = etag
    if thumb.refused is not None:
        headers["X-Soko-Preview"] = thumb.refused
    return Response(thumb.data, media_type=thumb.media_type, headers=headers)
