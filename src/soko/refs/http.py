"""``http(s)://`` references: digest from the ETag (else the URL), size from Content-Length.

As W&B does, ``extra.etag`` keeps the ETag with its quotes and the digest drops them.
"""

from __future__ import annotations

import os
from typing import BinaryIO

import httpx

from soko.core.manifest import Entry
from soko.core.names import validate_artifact_path
from soko.errors import DigestMismatchError, NotFoundError


def _client() -> httpx.Client:
    return httpx.Client(follow_redirects=True, timeout=httpx.Timeout(30.0, read=300.0))


class HttpHandler:
    def entries(
        self, uri: str, *, name: str | None, checksum: bool, max_objects: int | None
    ) -> list[Entry]:
        # W&B names the entry by the basename of the whole URL, query string included.
        path = validate_artifact_path(name or os.path.basename(uri))
        if not checksum:
            return [Entry(path=path, digest=uri, ref=uri)]
        with _client() as client, client.stream("GET", uri) as response:
            if response.status_code >= 400:
                raise NotFoundError(f"HTTP {response.status_code} for reference {uri!r}")
            etag = response.headers.get("etag")
            length = response.headers.get("content-length")
            return [
                Entry(
                    path=path,
                    digest=etag.strip('"') if etag else str(response.request.url),
                    size=int(length) if length is not None else None,
                    ref=str(response.request.url),
                    extra={"etag": etag} if etag else {},
                )
            ]

    def fetch(self, entry: Entry, out: BinaryIO) -> None:
        assert entry.ref is not None
        with _client() as client, client.stream("GET", entry.ref) as response:
            if response.status_code >= 400:
                raise NotFoundError(f"HTTP {response.status_code} for reference {entry.ref!r}")
            etag = response.headers.get("etag")
            if etag is not None and entry.digest != entry.ref and etag.strip('"') != entry.digest:
                raise DigestMismatchError(
                    f"Reference {entry.ref!r} changed: expected ETag {entry.digest!r}, "
                    f"server sent {etag!r}"
                )
            for chunk in response.iter_bytes(1024 * 1024):
                out.write(chunk)
