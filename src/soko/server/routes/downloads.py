"""Reading a version's bytes: its manifest, a plan of where each blob is, and the blobs.

A blob is served only through a version that names it and that the caller may read, so
a key of project A cannot read project B's bytes by guessing digests. Small blobs come in
framed batches (see :mod:`soko.wire.framing`); large ones alone, from the server or from a
presigned bucket URL. The client verifies every blob while it streams.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

from fastapi import APIRouter
from fastapi.responses import FileResponse, Response, StreamingResponse

from soko.core.digests import Digest
from soko.errors import CorruptBlobError, NotFoundError, ValidationError
from soko.server.deps import Caller, State
from soko.server.openapi import BINARY
from soko.server.routes.blobs import parse_digests
from soko.server.state import ServerState
from soko.service.store import parse_blob_ref
from soko.storage.base import BlobStore
from soko.storage.local import LocalBlobStore
from soko.wire import API_PREFIX
from soko.wire.base import format_digest, parse_digest
from soko.wire.framing import BATCH_BLOB_LIMIT, MEDIA_TYPE, frame_header
from soko.wire.requests import BlobSource, DigestList, DownloadPlanOut

router = APIRouter(prefix=API_PREFIX, tags=["downloads"])

_CHUNK = 1024 * 1024


class _BlobFileResponse(FileResponse):
    # Starlette reads a file 64 KiB at a time, each read a hop to a worker thread: 32,768
    # hops for a 2 GiB blob. A megabyte at a time makes that 2,048.
    chunk_size = _CHUNK


def _blob_response(blobs: BlobStore, digest: Digest, media_type: str) -> Response:
    path = blobs.local_path(digest)
    # A packed blob has no file of its own: it is streamed from its pack.
    if path is not None and os.path.isfile(path):
        return _BlobFileResponse(path, media_type=media_type)
    return StreamingResponse(_chunks_of(blobs, digest), media_type=media_type)


def _chunks_of(blobs: BlobStore, digest: Digest) -> Iterator[bytes]:
    with blobs.open(digest) as reader:
        while chunk := reader.read(_CHUNK):
            yield chunk


@router.get(
    "/versions/{version_id}/manifest",
    response_class=Response,
    responses={200: {"content": {"application/json": {"schema": {"type": "object"}}}}},
)
def get_manifest(version_id: str, state: State, caller: Caller) -> Response:
    """The manifest's stored bytes (W&B manifest JSON); their XXH128 is its ``manifest_blob``."""
    record = state.readable_version(caller, version_id)
    if record.manifest_blob is None:
        raise NotFoundError(f"Version {record.qualified_name} has no manifest yet.")
    return _blob_response(
        state.store.blobs, parse_blob_ref(record.manifest_blob), "application/json"
    )


@router.post("/versions/{version_id}/blobs/plan")
def plan_downloads(
    version_id: str, body: DigestList, state: State, caller: Caller
) -> DownloadPlanOut:
    """Each blob's size and, for large blobs in a bucket, a presigned URL."""
    record = state.readable_version(caller, version_id)
    digests = parse_digests(body.digests)
    state.require_members(record, digests)
    sizes = state.blob_sizes(record)
    presigner = state.presigner
    sources: list[BlobSource] = []
    for digest in digests:
        size = sizes[digest]
        url = None
        if presigner is not None and (size is None or size >= state.presign_min_bytes):
            url = presigner.presign_get(digest, expires=state.config.presign_expiry_seconds)
        sources.append(BlobSource(digest=format_digest(digest), size=size, url=url))
    return DownloadPlanOut(blobs=sources)


@router.post(
    "/versions/{version_id}/blobs/batch",
    response_class=Response,
    responses={200: {"content": {MEDIA_TYPE: BINARY}}},
)
def download_batch(version_id: str, body: DigestList, state: State, caller: Caller) -> Response:
    """The small blobs asked for, framed, in the order asked (read in parallel first, so
    that a missing blob is a JSON error, not a cut-off answer)."""
    record = state.readable_version(caller, version_id)
    digests = parse_digests(body.digests)
    state.require_members(record, digests)
    sizes = state.blob_sizes(record)
    if any((sizes[d] or 0) > BATCH_BLOB_LIMIT for d in digests) or (
        sum(sizes[d] or 0 for d in digests) > state.config.max_batch_bytes
    ):
        raise ValidationError(
            f"A batch carries blobs of at most {BATCH_BLOB_LIMIT} bytes and "
            f"{state.config.max_batch_bytes} bytes in all; fetch large blobs one by one."
        )
    try:
        contents = _read_all(state.store.blobs, digests, state)
    except NotFoundError as exc:
        raise CorruptBlobError(
            f"A blob of {record.qualified_name} is missing from the store ({exc}); "
            "run `soko verify` on the server."
        ) from None
    parts: list[bytes] = []
    for digest, data in zip(digests, contents, strict=True):
        parts.append(frame_header(digest, len(data)))
        parts.append(data)
    return Response(b"".join(parts), media_type=MEDIA_TYPE)


def _read_all(blobs: BlobStore, digests: list[Digest], state: ServerState) -> list[bytes]:
    packed: dict[Digest, bytes] = {}
    if isinstance(blobs, LocalBlobStore):
        packed = dict(blobs.read_packed(digests))  # one open per pack, not per blob
    rest = [d for d in digests if d not in packed]
    packed.update(zip(rest, state.io_pool.map(blobs.read_bytes, rest), strict=True))
    return [packed[d] for d in digests]


@router.get(
    "/versions/{version_id}/blobs/{algorithm}/{hex_digest}",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/octet-stream": BINARY}}},
)
def download_blob(
    version_id: str, algorithm: str, hex_digest: str, state: State, caller: Caller
) -> Response:
    record = state.readable_version(caller, version_id)
    digest = parse_digest(f"{algorithm}:{hex_digest}")
    state.require_members(record, [digest])
    state.store.blobs.stat(digest)  # NotFound as JSON, before a streaming answer starts
    return _blob_response(state.store.blobs, digest, "application/octet-stream")
