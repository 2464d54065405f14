"""A version's files for the web UI: folders of its manifest, one file, the whole as a zip.

A manifest is a flat map of paths; people browse folders. :class:`VersionFiles` reads them
through the index of the manifest (:mod:`soko.service.pages`): a folder's sub-folders,
sizes and counts are in the index, and a page of its files reads the one or two slices
of the manifest that hold them, so the first page of a version of 100,000 files reads
about a thousand entries, not the manifest. Files are sent as attachments of type
``application/octet-stream``: a file of an artifact is never shown as a page of this
server's origin, whatever it holds.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from fastapi.responses import Response, StreamingResponse
from zipstream import ZIP_STORED, ZipStream

from soko.core.manifest import Entry, ManifestRef
from soko.core.manifest_index import FolderInfo, ManifestIndex
from soko.core.records import VersionRecord
from soko.errors import NotFoundError
from soko.server.state import ServerState
from soko.service import pages

_CHUNK = 1024 * 1024

Folder = FolderInfo
"""A folder as a page lists it: ``name``, ``path``, ``size`` and ``files`` (under it)."""


@dataclass(frozen=True, slots=True)
class FileRow:
    """A file as a page lists it: what the manifest says of it, read without the checks of
    :class:`~soko.core.manifest.Entry` (the manifest passed them when it was committed)."""

    path: str
    digest: str
    size: int | None
    ref: str | None

    @property
    def name(self) -> str:
        return self.path.rpartition("/")[2]

    @classmethod
    def of(cls, path: str, value: dict[str, Any]) -> FileRow:
        size, ref = value.get("size"), value.get("ref")
        return cls(
            path,
            str(value.get("digest", "")),
            size if isinstance(size, int) else None,
            ref if isinstance(ref, str) else None,
        )


class VersionFiles:
    """The files of one version, read through its manifest's index."""

    def __init__(self, state: ServerState, record: VersionRecord) -> None:
        key = record.manifest_blob
        if key is None:
            raise NotFoundError(f"Version {record.qualified_name} has no manifest yet.")
        self.state = state
        self.ref = ManifestRef.parse(key)
        self.index: ManifestIndex = pages.index_of(
            state.store,
            self.ref,
            # Building an index reads the manifest whole, once: the server's bound applies.
            before_build=lambda: state.check_manifest_size(
                self.ref.digest, name=record.qualified_name
            ),
        )

    def folder(self, path: str, *, start: int, count: int) -> tuple[list[Folder | FileRow], int]:
        """Items *start* to *start* + *count* of folder *path* ("" for the top): its
        sub-folders by name, then its files; and how many items it has. NotFoundError for
        a folder the version does not have."""
        path = path.strip("/")
        info = self.index.folder(path)
        if info is None:
            raise NotFoundError(f"This version has no folder {path!r}.")
        subs = self.index.subfolders(path)
        items: list[Folder | FileRow] = list(subs[start : start + count])
        wanted = count - len(items)
        if wanted > 0:
            skip = max(0, start - len(subs))
            rows = pages.folder_files(self.state.store, self.ref, path, skip=skip, limit=wanted)
            items.extend(FileRow.of(p, value) for p, value in rows)
        return items, len(subs) + info.own

    def references(self, limit: int) -> list[FileRow]:
        """The first *limit* entries whose bytes live elsewhere (a URI), by path."""
        rows = pages.references(self.state.store, self.ref, limit=limit)
        return [FileRow.of(p, value) for p, value in rows]

    @property
    def reference_count(self) -> int:
        return self.index.references

    def entry(self, path: str) -> Entry | None:
        return pages.entry_at(self.state.store, self.ref, path)

    def entries(self) -> Iterator[Entry]:
        return pages.iter_entries(self.state.store, self.ref)

    def values(self) -> Iterator[tuple[str, dict[str, Any]]]:
        """(path, W&B's JSON object) of every entry, in path order, a slice at a time."""
        return pages.iter_values(self.state.store, self.ref)


def diff(before: VersionFiles, after: VersionFiles) -> dict[str, list[str]]:
    """The paths added, removed and changed (digest or reference) from *before* to
    *after*: both walked once in path order, a slice at a time."""
    found: dict[str, list[str]] = {"added": [], "removed": [], "changed": []}
    if before.ref == after.ref:
        return found
    old, new = before.values(), after.values()
    a, b = next(old, None), next(new, None)
    while a is not None or b is not None:
        if b is None or (a is not None and a[0] < b[0]):
            assert a is not None
            found["removed"].append(a[0])
            a = next(old, None)
        elif a is None or b[0] < a[0]:
            found["added"].append(b[0])
            b = next(new, None)
        else:
            if (a[1].get("digest"), a[1].get("ref")) != (b[1].get("digest"), b[1].get("ref")):
                found["changed"].append(b[0])
            a, b = next(old, None), next(new, None)
    return found


def _chunks(state: ServerState, entry: Entry) -> Iterator[bytes]:
    with state.store.blobs.open(entry.blob_digest()) as reader:
        while chunk := reader.read(_CHUNK):
            yield chunk


IMAGE_TYPES = {
    "png": "image/png",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "gif": "image/gif",
    "webp": "image/webp",
}
"""Raster images a page may show: never SVG, which is a document that can hold script."""
PREVIEW_MAX_BYTES = 4 * 1024 * 1024


def image_type(path: str, size: int | None) -> str | None:
    """The media type a page shows the file as, if it is an image small enough to preview."""
    kind = IMAGE_TYPES.get(path.rpartition(".")[2].lower())
    if kind is None or size is None or size > PREVIEW_MAX_BYTES:
        return None
    return kind


def image_response(state: ServerState, tree: VersionFiles, path: str) -> Response:
    entry = tree.entry(path)
    kind = image_type(path, entry.size) if entry is not None else None
    if entry is None or kind is None or entry.is_reference:
        raise NotFoundError(f"{path!r} is not an image of this version that can be shown.")
    state.store.blobs.stat(entry.blob_digest())
    headers = {"X-Content-Type-Options": "nosniff", "Cache-Control": "private, max-age=3600"}
    return StreamingResponse(_chunks(state, entry), media_type=kind, headers=headers)


def _attachment(filename: str) -> str:
    # RFC 6266: a plain ASCII fallback, and the exact name percent-encoded (RFC 5987).
    fallback = (
        "".join(c if c.isascii() and c.isprintable() and c not in '"\\' else "_" for c in filename)
        or "file"
    )
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


def file_response(
    state: ServerState, record: VersionRecord, tree: VersionFiles, path: str
) -> Response:
    entry = tree.entry(path)
    if entry is None:
        raise NotFoundError(f"{record.qualified_name} has no file {path!r}.")
    if entry.is_reference:
        raise NotFoundError(
            f"{path!r} is a reference to {entry.ref}; soko does not hold its bytes."
        )
    state.store.blobs.stat(entry.blob_digest())  # NotFoundError before the answer starts
    headers = {
        "Content-Disposition": _attachment(path.rpartition("/")[2]),
        "X-Content-Type-Options": "nosniff",
    }
    if entry.size is not None:
        headers["Content-Length"] = str(entry.size)
    return StreamingResponse(
        _chunks(state, entry), media_type="application/octet-stream", headers=headers
    )


def zip_response(state: ServerState, record: VersionRecord, tree: VersionFiles) -> Response:
    """Every file the store holds of the version, in a zip written as it is sent
    (references are left out: their bytes live elsewhere)."""
    archive = ZipStream(compress_type=ZIP_STORED)
    for entry in tree.entries():
        if not entry.is_reference:
            archive.add(_chunks(state, entry), entry.path)
    name = f"{record.collection}-{record.version}.zip"
    return StreamingResponse(
        iter(archive),
        media_type="application/zip",
        headers={"Content-Disposition": _attachment(name), "X-Content-Type-Options": "nosniff"},
    )
