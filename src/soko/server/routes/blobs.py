"""Uploading blobs: which are missing, small ones in batches, large ones alone or presigned.

Every path verifies the bytes against their digest before the blob becomes visible: the
store hashes what streams through the server; a presigned upload lands under a staging key
of its project and is checked (bucket checksum or read-back) before it is moved to its blob
key. The bytes are verified, and compared with the stored copy, even when the blob is
stored already, because an upload is made *for* a project (``entity``/``project``, writer
role there) and proves that the project holds the blob: only then may its commits name it
(:mod:`soko.service.possession`). Which blobs are missing is asked per project too, so the
answer says nothing about other projects' blobs.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from typing import Annotated

import anyio.from_thread
import anyio.to_thread
from fastapi import APIRouter, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from soko.core.digests import Digest
from soko.core.names import validate_project
from soko.errors import ValidationError
from soko.server.auth import Principal
from soko.server.deps import Caller, State
from soko.server.openapi import BINARY
from soko.server.state import ServerState
from soko.service import possession
from soko.storage.capabilities import PackedBatches
from soko.wire import API_PREFIX
from soko.wire.base import format_digest, parse_digest
from soko.wire.fields import CollectionName, ProjectName, VersionId
from soko.wire.framing import MEDIA_TYPE, read_frames
from soko.wire.missing_bits import MEDIA_TYPE as MISSING_MEDIA_TYPE
from soko.wire.missing_bits import algorithm_of, batch_of, bits_of
from soko.wire.requests import (
    MAX_SOURCES,
    CompleteUploadIn,
    MissingIn,
    MissingOut,
    StoredOut,
    UploadPlanIn,
    UploadPlanOut,
    UploadTarget,
)

router = APIRouter(prefix=API_PREFIX, tags=["blobs"])

_READ_AHEAD = 1024 * 1024
_UPLOAD_ID = re.compile(r"^[0-9a-f]{32}$")
# One presigned PUT carries at most 5 GiB (S3's limit); larger blobs stream through the
# server, which uploads them in parts.
_PRESIGN_MAX = 5 * 1024**3


def parse_digests(texts: list[str]) -> list[Digest]:
    return [parse_digest(t) for t in texts]


def _require_uploader(caller: Principal, entity: str, project: str) -> None:
    """The caller may upload for the project (checked before any byte is stored)."""
    caller.require(entity, project, "writer")
    validate_project(entity)
    validate_project(project)


def _upload_scope(entity: str, project: str) -> str:
    """Whom a presigned upload is for: its staging key derives from the project, so that an
    upload id (which its URL shows) completed for another project finds nothing there, and
    proves no possession for it."""
    return f"{entity}/{project}"


@router.post("/blobs/missing")
def missing_blobs(body: MissingIn, state: State, caller: Caller) -> MissingOut:
    """Which of the digests a writer of the project must upload before naming them in a
    commit: one question for up to 10,000 blobs."""
    _require_uploader(caller, body.entity, body.project)
    missing = possession.missing(
        state.store,
        entity=body.entity,
        project=body.project,
        digests=set(parse_digests(body.digests)),
        # Read only when needed: a source's blobs are its whole manifest's.
        sources=lambda: state.sources(
            caller,
            entity=body.entity,
            project=body.project,
            name=body.name,
            version_ids=body.sources,
        ),
    )
    return MissingOut(missing=sorted(format_digest(d) for d in missing))


@router.post(
    "/blobs/missing/raw",
    openapi_extra={"requestBody": {"content": {MISSING_MEDIA_TYPE: BINARY}, "required": True}},
    response_class=Response,
    responses={200: {"content": {MISSING_MEDIA_TYPE: BINARY}}},
)
async def missing_blobs_raw(
    request: Request,
    state: State,
    caller: Caller,
    entity: ProjectName,
    project: ProjectName,
    algorithm: str,
    name: CollectionName | None = None,
    sources: Annotated[list[VersionId], Query(max_length=MAX_SOURCES)] = [],  # noqa: B006
) -> Response:
    """The missing-blob question in bytes (:mod:`soko.wire.missing_bits`): the body is up
    to 65,536 raw digests of *algorithm* back to back, the answer one bit per digest, set
    when a writer of the project must upload that blob (as ``/blobs/missing`` answers)."""
    _require_uploader(caller, entity, project)
    batch = batch_of(algorithm_of(algorithm), await request.body())

    def answer() -> bytes:
        missing = possession.missing_raw(
            state.store,
            entity=entity,
            project=project,
            batch=batch,
            sources=lambda: state.sources(
                caller, entity=entity, project=project, name=name, version_ids=sources
            ),
        )
        return bits_of(batch.raw_list(), missing)

    return Response(await run_in_threadpool(answer), media_type=MISSING_MEDIA_TYPE)


@router.post(
    "/blobs/batch",
    openapi_extra={"requestBody": {"content": {MEDIA_TYPE: BINARY}, "required": True}},
)
async def upload_batch(
    request: Request, state: State, caller: Caller, entity: ProjectName, project: ProjectName
) -> StoredOut:
    """Store the small blobs framed in the body (see :mod:`soko.wire.framing`), each
    verified, for the project."""
    _require_uploader(caller, entity, project)
    body = await request.body()
    return await run_in_threadpool(_store_batch, state, body, entity, project)


def _store_batch(state: ServerState, body: bytes, entity: str, project: str) -> StoredOut:
    frames = read_frames(body)
    blobs = state.store.blobs
    if isinstance(blobs, PackedBatches):
        # One file and one fsync for the batch, not a file per blob.
        blobs.put_blobs(frames)
    else:
        # In parallel: each put is a round trip to the bucket.
        for _ in state.io_pool.map(lambda frame: blobs.put_bytes(*frame), frames):
            pass
    sizes = [(digest, len(data)) for digest, data in frames]
    possession.record_uploads(state.store, entity=entity, project=project, blobs=sizes)
    return StoredOut(stored=len(frames), bytes=sum(size for _, size in sizes))


class BodyReader:
    """A blocking reader over the request's async body, for the store's worker thread.

    Each call is one hop from the worker thread to the event loop and back, so the loop
    gathers many socket reads per call: ``readinto`` fills the caller's buffer (8 MiB for
    a store's copy, see :func:`soko.storage.copying.copy_stream`) with the body's chunks as
    they arrive, ``read`` joins about a megabyte of them.
    """

    def __init__(self, chunks: AsyncIterator[bytes]) -> None:
        self._chunks = chunks
        self._rest = b""  # of a chunk that did not fit the last buffer
        self._done = False

    async def _next_chunk(self) -> bytes:
        if self._rest:
            chunk, self._rest = self._rest, b""
            return chunk
        while not self._done:
            try:
                chunk = await self._chunks.__anext__()
            except StopAsyncIteration:
                self._done = True
                break
            if chunk:
                return chunk
        return b""

    async def _gather(self) -> bytes:
        parts: list[bytes] = []
        size = 0
        while size < _READ_AHEAD and (chunk := await self._next_chunk()):
            parts.append(chunk)
            size += len(chunk)
        return b"".join(parts)

    async def _fill(self, view: memoryview) -> int:
        filled = 0
        while filled < len(view) and (chunk := await self._next_chunk()):
            count = min(len(chunk), len(view) - filled)
            view[filled : filled + count] = memoryview(chunk)[:count]
            filled += count
            if count < len(chunk):
                self._rest = chunk[count:]
        return filled

    def readinto(self, view: memoryview) -> int:
        if self._done and not self._rest:
            return 0
        return anyio.from_thread.run(self._fill, view)

    def read(self, size: int = -1) -> bytes:
        if self._done and not self._rest:
            return b""
        data = self._rest if self._rest else anyio.from_thread.run(self._gather)
        self._rest = b""
        if 0 <= size < len(data):
            data, self._rest = data[:size], data[size:]
        return data


@router.put(
    "/blobs/{algorithm}/{hex_digest}",
    openapi_extra={
        "requestBody": {"content": {"application/octet-stream": BINARY}, "required": True}
    },
)
async def upload_blob(
    algorithm: str,
    hex_digest: str,
    request: Request,
    state: State,
    caller: Caller,
    entity: ProjectName,
    project: ProjectName,
) -> StoredOut:
    """Store the body as one blob for the project, hashing it as it streams to the store
    (a blob stored already is hashed all the same, and not written)."""
    _require_uploader(caller, entity, project)
    digest = parse_digest(f"{algorithm}:{hex_digest}")
    reader = BodyReader(request.stream())

    def store() -> int:
        size = state.store.blobs.put_stream(digest, reader)  # type: ignore[arg-type]
        possession.record_uploads(
            state.store, entity=entity, project=project, blobs=[(digest, size)]
        )
        return size

    return StoredOut(stored=1, bytes=await anyio.to_thread.run_sync(store))


@router.post("/blobs/uploads")
def plan_uploads(body: UploadPlanIn, state: State, caller: Caller) -> UploadPlanOut:
    """Presigned bucket URLs for large blobs when the store has them, else the server's PUT."""
    _require_uploader(caller, body.entity, body.project)
    presigner = state.presigner
    targets: list[UploadTarget] = []
    for blob in body.blobs:
        digest = parse_digest(blob.digest)
        if presigner is None or not state.presign_min_bytes <= blob.size <= _PRESIGN_MAX:
            targets.append(UploadTarget(digest=blob.digest))
            continue
        upload_id = uuid.uuid4().hex
        url, headers = presigner.presign_staged_put(
            upload_id,
            digest,
            scope=_upload_scope(body.entity, body.project),
            size=blob.size,
            expires=state.config.presign_expiry_seconds,
        )
        targets.append(
            UploadTarget(digest=blob.digest, upload_id=upload_id, url=url, headers=headers)
        )
    return UploadPlanOut(uploads=targets)


@router.post("/blobs/uploads/{upload_id}/complete")
def complete_upload(
    upload_id: str, body: CompleteUploadIn, state: State, caller: Caller
) -> StoredOut:
    """Check a presigned upload against its digest, then make it the blob (the bytes are
    checked even when the blob is stored already: they prove the project holds it)."""
    _require_uploader(caller, body.entity, body.project)
    presigner = state.presigner
    if presigner is None:
        raise ValidationError("This server's store takes no presigned uploads.")
    if not _UPLOAD_ID.match(upload_id):
        raise ValidationError(f"Not an upload id: {upload_id!r}")
    digest = parse_digest(body.digest)
    size = presigner.complete_staged(
        upload_id, digest, scope=_upload_scope(body.entity, body.project)
    )
    possession.record_uploads(
        state.store, entity=body.entity, project=body.project, blobs=[(digest, size)]
    )
    return StoredOut(stored=1, bytes=size)
