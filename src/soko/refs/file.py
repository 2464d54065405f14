"""``file://`` references: files on a mounted file system, tracked but not copied.

Digests follow W&B: the base64 MD5 of the content with ``checksum=True`` (MD5 whatever the
artifact's algorithm, as W&B does), else the MD5 of the resolved ``file://`` URI.
"""

from __future__ import annotations

import os
import shutil
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from soko.core.digests import Algorithm, Digest, b64_of_string
from soko.core.manifest import Entry
from soko.errors import DigestMismatchError, MissingReferenceError, ValidationError
from soko.refs.base import check_object_count, entry_path
from soko.terminal import timed_line

DEFAULT_MAX_OBJECTS = 10_000_000


def uri_to_path(uri: str) -> str:
    path = urllib.parse.urlparse(uri).path if uri.startswith("file:") else uri
    return urllib.request.url2pathname(path)


def _md5_of_file(path: str) -> str:
    hasher = Algorithm.MD5.hasher()
    with open(path, "rb") as f:
        while chunk := f.read(8 * 1024 * 1024):
            hasher.update(chunk)
    return Digest(Algorithm.MD5, hasher.digest()).b64


def _walk(
    uri: str, local: str, name: str | None, limit: int, digest_of: Callable[[str], str]
) -> list[Entry]:
    """The entries of every file under the folder *local* (of the reference *uri*)."""
    found: list[Entry] = []
    for root, _dirs, files in os.walk(local):
        for file_name in files:
            physical = os.path.join(root, file_name)
            relative = os.path.relpath(physical, local)
            check_object_count(len(found) + 1, limit, uri)
            found.append(
                Entry(
                    path=entry_path(name, relative),
                    digest=digest_of(physical),
                    size=os.path.getsize(physical),
                    ref=os.path.join(uri, relative),
                )
            )
    return found


class FileHandler:
    def entries(
        self, uri: str, *, name: str | None, checksum: bool, max_objects: int | None
    ) -> list[Entry]:
        local = uri_to_path(uri)
        limit = max_objects or DEFAULT_MAX_OBJECTS

        def digest_of(path: str) -> str:
            return _md5_of_file(path) if checksum else b64_of_string(Path(path).resolve().as_uri())

        if os.path.isdir(local):
            if not checksum:
                return _walk(uri, local, name, limit, digest_of)
            with timed_line(f"Generating checksum for up to {limit!r} files in {local!r}... "):
                return _walk(uri, local, name, limit, digest_of)
        if os.path.isfile(local):
            return [
                Entry(
                    path=entry_path(None, name or os.path.basename(local)),
                    digest=digest_of(local),
                    size=os.path.getsize(local),
                    ref=uri,
                )
            ]
        raise ValidationError(f"Path {uri!r} must be a valid file or directory path")

    def fetch(self, entry: Entry, out: BinaryIO) -> None:
        assert entry.ref is not None
        local = uri_to_path(entry.ref)
        if not os.path.isfile(local):
            raise MissingReferenceError(
                f"Local file reference: Failed to find file at path {local!r}"
            )
        # A checksum=False entry's digest is that of its URI; there is no content to check.
        uri_digest = b64_of_string(Path(local).resolve().as_uri())
        if entry.digest != uri_digest:
            actual = _md5_of_file(local)
            if actual != entry.digest:
                raise DigestMismatchError(
                    f"Local file reference {local!r} changed: expected digest "
                    f"{entry.digest!r}, found {actual!r}"
                )
        with open(local, "rb") as src:
            shutil.copyfileobj(src, out, 8 * 1024 * 1024)
