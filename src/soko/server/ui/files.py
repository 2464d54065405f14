"""A version's files for the web UI: folders of its manifest, one file, the whole as a zip.

A manifest is a flat map of paths; people browse folders. :class:`FileTree` groups the
entries by folder once per manifest (kept in a small cache, since a person pages through
a large version one request at a time), so a page of a folder of 100,000 files is a slice.
Files are sent as attachments of type ``application/octet-stream``: a file of an artifact
is never shown as a page of this server's origin, whatever it holds.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from urllib.parse import quote

from fastapi.responses import Response, StreamingResponse
from zipstream import ZIP_STORED, ZipStream

from soko.core.digests import Algorithm
from soko.core.manifest import Entry, Manifest, ManifestRef
from soko.core.records import VersionRecord
from soko.errors import NotFoundError
from soko.server.state import ServerState

_CHUNK = 1024 * 1024
_TREES_KEPT = 8


@dataclass(frozen=True, slots=True)
class Folder:
    name: str
    path: str
    size: int
    files: int


@dataclass
class FileTree:
    """The folders of a manifest: each folder's sub-folders, then its files, by name."""

    manifest: Manifest
    children: dict[str, list[Folder | Entry]] = field(default_factory=dict)
    references: list[Entry] = field(default_factory=list)
    """The entries whose bytes live elsewhere (a URI), by path."""

    @classmethod
    def of(cls, manifest: Manifest) -> FileTree:
        sizes: dict[str, int] = {}
        counts: dict[str, int] = {}
        files: dict[str, list[Entry]] = {}
        for entry in manifest:
            folder, _, _ = entry.path.rpartition("/")
            files.setdefault(folder, []).append(entry)
            # Every folder above the file counts it: walk up until the root.
            while True:
                sizes[folder] = sizes.get(folder, 0) + (entry.size or 0)
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
        tree = cls(
            manifest,
            references=sorted((e for e in manifest if e.is_reference), key=lambda e: e.path),
        )
        for folder in counts:
            subs = sorted(subfolders.get(folder, []), key=lambda f: f.name)
            own = sorted(files.get(folder, []), key=lambda e: e.path)
            tree.children[folder] = [*subs, *own]
        return tree

    def folder(self, path: str) -> list[Folder | Entry]:
        """The sub-folders and files of folder *path* ("" for the top); NotFoundError for a
        folder the version does not have."""
        path = path.strip("/")
        found = self.children.get(path)
        if found is None:
            raise NotFoundError(f"This version has no folder {path!r}.")
        return found


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
        tree = FileTree.of(manifest_of(state, record))
        with self._lock:
            self._trees[key] = tree
            while len(self._trees) > _TREES_KEPT:
                self._trees.popitem(last=False)
        return tree


def manifest_of(state: ServerState, record: VersionRecord) -> Manifest:
    if record.manifest_blob is None:
        raise NotFoundError(f"Version {record.qualified_name} has no manifest yet.")
    ref = ManifestRef.parse(record.manifest_blob)
    state.check_manifest_size(ref.digest, name=record.qualified_name)
    return state.store.load_manifest(
        ref, Algorithm.parse(record.algorithm), name=record.qualified_name
    )


def _chunks(state: ServerState, entry: Entry) -> Iterator[bytes]:
    with state.store.blobs.open(entry.blob_digest()) as reader:
        while chunk := reader.read(_CHUNK):
            yield chunk


def _attachment(filename: str) -> str:
    # RFC 6266: a plain ASCII fallback, and the exact name percent-encoded (RFC 5987).
    fallback = (
        "".join(c if c.isascii() and c.isprintable() and c not in '"\\' else "_" for c in filename)
        or "file"
    )
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


def file_response(state: ServerState, record: VersionRecord, path: str) -> Response:
    entry = manifest_of(state, record).get(path)
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


def zip_response(state: ServerState, record: VersionRecord) -> Response:
    """Every file the store holds of the version, in a zip written as it is sent
    (references are left out: their bytes live elsewhere)."""
    manifest = manifest_of(state, record)
    archive = ZipStream(compress_type=ZIP_STORED)
    for entry in sorted(manifest, key=lambda e: e.path):
        if not entry.is_reference:
            archive.add(_chunks(state, entry), entry.path)
    name = f"{record.collection}-{record.version}.zip"
    return StreamingResponse(
        iter(archive),
        media_type="application/zip",
        headers={"Content-Disposition": _attachment(name), "X-Content-Type-Options": "nosniff"},
    )
