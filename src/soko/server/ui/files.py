"""A version's files for the web UI: folders of its manifest, one file, the whole as a zip.

A manifest is a flat map of paths; people browse folders. :class:`FileTree` groups the
entries by folder once per manifest (kept in a small cache, since a person pages through
a large version one request at a time), so a page of a folder of 100,000 files is a slice.
Files are sent as attachments of type ``application/octet-stream``: a file of an artifact
is never shown as a page of this server's origin, whatever it holds.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from fastapi.responses import Response, StreamingResponse
from zipstream import ZIP_STORED, ZipStream

from soko.core.manifest import Entry, ManifestRef
from soko.core.records import VersionRecord
from soko.errors import NotFoundError, ValidationError
from soko.server.state import ServerState

_CHUNK = 1024 * 1024
_TREES_KEPT = 8


@dataclass(frozen=True, slots=True)
class Folder:
    name: str
    path: str
    size: int
    files: int


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


@dataclass
class FileTree:
    """The folders of a manifest: each folder's sub-folders, then its files, by name.

    Built from the manifest's JSON, without making an Entry of each file: that costs five
    times the parse, and a page shows a hundred of them. Entries are made for what is
    downloaded (:meth:`entry`)."""

    contents: dict[str, Any]
    children: dict[str, list[Folder | FileRow]] = field(default_factory=dict)
    references: list[FileRow] = field(default_factory=list)
    """The entries whose bytes live elsewhere (a URI), by path."""

    @classmethod
    def of(cls, raw: bytes) -> FileTree:
        data = json.loads(raw)
        contents = data.get("contents") if isinstance(data, dict) else None
        if not isinstance(contents, dict):
            raise ValidationError("This version's manifest has no contents.")
        sizes: dict[str, int] = {}
        counts: dict[str, int] = {}
        files: dict[str, list[FileRow]] = {}
        references = []
        for path in sorted(contents):
            value = contents[path]
            if not isinstance(value, dict):
                continue
            size = value.get("size")
            ref = value.get("ref")
            row = FileRow(
                path,
                str(value.get("digest", "")),
                size if isinstance(size, int) else None,
                ref if isinstance(ref, str) else None,
            )
            if row.ref is not None:
                references.append(row)
            folder = path.rpartition("/")[0]
            files.setdefault(folder, []).append(row)
            # Every folder above the file counts it: walk up until the root.
            while True:
                sizes[folder] = sizes.get(folder, 0) + (row.size or 0)
                counts[folder] = counts.get(folder, 0) + 1
                if not folder:
                    break
                folder = folder.rpartition("/")[0]
        subfolders: dict[str, list[Folder]] = {}
        for folder in counts:
            if folder:
                parent, _, name = folder.rpartition("/")
                subfolders.setdefault(parent, []).append(
                    Folder(name, folder, sizes[folder], counts[folder])
                )
        tree = cls(contents, references=references)
        for folder in counts:
            subs = sorted(subfolders.get(folder, []), key=lambda f: f.name)
            tree.children[folder] = [*subs, *files.get(folder, [])]
        tree.children.setdefault("", [])
        return tree

    def folder(self, path: str) -> list[Folder | FileRow]:
        """The sub-folders and files of folder *path* ("" for the top); NotFoundError for a
        folder the version does not have."""
        path = path.strip("/")
        found = self.children.get(path)
        if found is None:
            raise NotFoundError(f"This version has no folder {path!r}.")
        return found

    def entry(self, path: str) -> Entry | None:
        data = self.contents.get(path)
        return None if data is None else Entry.from_json(path, data)

    def entries(self) -> Iterator[Entry]:
        for path in sorted(self.contents):
            yield Entry.from_json(path, self.contents[path])


class Trees:
    """The file trees of the manifests looked at last (a few; each is as large as its
    manifest)."""

    def __init__(self) -> None:
        self._trees: OrderedDict[str, FileTree] = OrderedDict()
        self._lock = threading.Lock()

    def of(self, state: ServerState, record: VersionRecord) -> FileTree:
        key = record.manifest_blob
        if key is None:
            raise NotFoundError(f"Version {record.qualified_name} has no manifest yet.")
        with self._lock:
            tree = self._trees.get(key)
            if tree is not None:
                self._trees.move_to_end(key)
                return tree
        ref = ManifestRef.parse(key)
        state.check_manifest_size(ref.digest, name=record.qualified_name)
        tree = FileTree.of(state.store.manifest_bytes(ref))
        with self._lock:
            self._trees[key] = tree
            while len(self._trees) > _TREES_KEPT:
                self._trees.popitem(last=False)
        return tree


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


def image_response(state: ServerState, tree: FileTree, path: str) -> Response:
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


def file_response(state: ServerState, record: VersionRecord, tree: FileTree, path: str) -> Response:
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


def zip_response(state: ServerState, record: VersionRecord, tree: FileTree) -> Response:
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
