"""Where the `wandb` client sends a file's bytes, and how an upload becomes a blob.

A file goes in one PUT, or, from 2 GiB on (the client's choice), in parts:
``createArtifactFiles`` hands out a URL per part and ``completeMultipartUploadArtifact``
joins them. Files over S3's 5 GiB limit for one PUT need the parts.

- S3 store: the PUT, or the parts of a multipart upload, go to the bucket's staging key of
  the upload (presigned; the bucket checks each ``Content-MD5``); the staged object is
  checked against the file's digest and copied to its blob key when the parts are joined,
  or when the manifest arrives.
- Folder store: the PUT goes to this server (:mod:`.routes`), which hashes it into the
  store. A part is stored the same way, as the blob of its MD5 and an upload of the
  project (so that joining proves the project sent every part); the join reads the parts
  in order into the file's blob, hashed against its digest. The parts are blobs no version
  names: garbage collection removes them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, BinaryIO, cast

from soko.core.digests import Digest, parse_digest
from soko.core.records import VersionRecord
from soko.errors import NotFoundError, ServerUnavailableError, ValidationError
from soko.server.wandb.queries import Context, Obj, decode_id
from soko.service import possession

MAX_PARTS = 10_000
"""S3's limit on the parts of one upload (the client's too)."""
_HEX_MD5 = re.compile(r"^[0-9a-f]{32}$")
FOLDER_UPLOAD_ID = "soko-parts"
"""The upload id of a folder store's parts: the parts themselves are what is checked."""


def upload_scope(record: VersionRecord) -> str:
    return f"{record.entity}/{record.project}"


def _put_url(ctx: Context, record: VersionRecord, digest: Digest) -> str:
    token = ctx.signer.sign(
        "put",
        {"d": str(digest), "e": record.entity, "p": record.project},
        expires_in=ctx.state.config.presign_expiry_seconds,
    )
    return f"{ctx.base_url}/wandb/uploads/{token}"


def upload_url(ctx: Context, record: VersionRecord, digest: Digest) -> str:
    """Where the client PUTs a blob of *record*: the bucket's staging key (presigned; the
    manifest's upload completes it) when the store has one, else this server, signed."""
    presigner = ctx.state.presigner
    if presigner is None:
        return _put_url(ctx, record, digest)
    url, _headers = presigner.presign_staged_put(
        ctx.signer.upload_id(record.id, str(digest)),
        digest,
        scope=upload_scope(record),
        size=0,
        expires=ctx.state.config.presign_expiry_seconds,
    )
    return url


def _part_digests(parts: Sequence[Mapping[str, Any]], what: str) -> list[str]:
    """The hex MD5s of *parts* (``{partNumber, hexMD5}``), which must be numbered 1..n in
    order; an S3 ETag's quotes are dropped."""
    if not parts or len(parts) > MAX_PARTS:
        raise ValidationError(f"{what}: between 1 and {MAX_PARTS} parts, not {len(parts)}.")
    found = []
    for index, part in enumerate(parts, start=1):
        if part["partNumber"] != index:
            raise ValidationError(f"{what}: part {index} is numbered {part['partNumber']}.")
        value = str(part["hexMD5"]).strip('"').lower()
        if not _HEX_MD5.match(value):
            raise ValidationError(f"{what}: part {index} has no hex MD5 ({part['hexMD5']!r}).")
        found.append(value)
    return found


def part_urls(
    ctx: Context, record: VersionRecord, digest: Digest, parts: Sequence[Mapping[str, Any]]
) -> Obj:
    """W&B's ``uploadMultipartUrls`` for a file of *record* sent in *parts*."""
    hex_md5s = _part_digests(parts, f"The parts of {digest}")
    presigner = ctx.state.presigner
    expires = ctx.state.config.presign_expiry_seconds
    if presigner is not None:
        staged = ctx.signer.upload_id(record.id, str(digest))
        multipart_id, urls = presigner.presign_staged_parts(
            staged, scope=upload_scope(record), parts=len(hex_md5s), expires=expires
        )
        # The bucket's upload id, bound to this file of this artifact: the join takes no
        # other upload's parts, whatever the bucket checks.
        upload_id = ctx.signer.sign("parts", {"s": staged, "m": multipart_id}, expires_in=expires)
    else:
        upload_id = FOLDER_UPLOAD_ID
        urls = [_put_url(ctx, record, parse_digest(f"md5:{h}")) for h in hex_md5s]
    return {
        "uploadID": upload_id,
        "uploadUrlParts": [
            {"partNumber": number, "uploadUrl": url} for number, url in enumerate(urls, start=1)
        ],
    }


def _lacking(ctx: Context, record: VersionRecord, digests: set[Digest]) -> set[Digest]:
    """Which of *digests* the project of *record* has not uploaded (nor holds otherwise)."""
    return possession.missing(
        ctx.state.store,
        entity=record.entity,
        project=record.project,
        digests=digests,
        sources=[],
    )


class _Joined:
    """The parts' blobs read one after another, as one stream."""

    def __init__(self, ctx: Context, parts: list[Digest]) -> None:
        self._blobs = ctx.state.store.blobs
        self._parts = list(reversed(parts))
        self._current: BinaryIO | None = None

    def read(self, size: int = -1) -> bytes:
        while True:
            if self._current is None:
                if not self._parts:
                    return b""
                self._current = self._blobs.open(self._parts.pop())
            chunk = self._current.read(size)
            if chunk:
                return chunk
            self._current.close()
            self._current = None

    def close(self) -> None:
        if self._current is not None:
            self._current.close()


def complete_multipart(ctx: Context, data: Mapping[str, Any]) -> Obj:
    """Join the parts of a file into its blob, checked against its digest; the blob is an
    upload of the artifact's project."""
    record = ctx.state.writable_version(ctx.principal, decode_id("Artifact", data["artifactID"]))
    digest = parse_digest(str(data["storagePath"]).replace("/", ":", 1))
    etags = _part_digests(data["completedParts"], f"The parts of {digest}")
    if not _lacking(ctx, record, {digest}):
        # Joined already: the client asked again after its request timed out, say.
        return {"digest": digest.hex}
    presigner = ctx.state.presigner
    scope = upload_scope(record)
    if presigner is not None:
        staged = ctx.signer.upload_id(record.id, str(digest))
        grant = ctx.signer.verify(str(data["uploadID"]), "parts")
        if grant.subject.get("s") != staged:
            raise ValidationError(f"The upload id is not that of {digest} in this artifact.")

        def join() -> int:
            presigner.join_staged_parts(staged, str(grant.subject["m"]), etags, scope=scope)
            return presigner.complete_staged(staged, digest, scope=scope)

    else:
        parts = [parse_digest(f"md5:{etag}") for etag in etags]
        if lacking := _lacking(ctx, record, set(parts)):
            raise ValidationError(
                f"{len(lacking)} part(s) of {digest} were not uploaded; nothing was joined."
            )

        def join() -> int:
            joined = _Joined(ctx, parts)
            try:
                return ctx.state.store.blobs.put_stream(digest, cast(BinaryIO, joined))
            finally:
                joined.close()

    def join_and_record() -> int:
        size = join()
        possession.record_uploads(
            ctx.state.store, entity=record.entity, project=record.project, blobs=[(digest, size)]
        )
        return size

    if ctx.joins is None:
        join_and_record()
    elif ctx.joins.run(f"{scope}/{digest}", join_and_record) is None:
        raise ServerUnavailableError(
            f"The parts of {digest} are being joined and checked; ask again in a while."
        )
    return {"digest": digest.hex}


def complete_staged(ctx: Context, record: VersionRecord, digests: set[Digest]) -> None:
    """Make the bucket uploads of *digests* for *record* blobs of its project, each checked
    against its digest (the bucket checked the Content-MD5 already); a digest nothing was
    uploaded for is left for the possession check to report."""
    presigner = ctx.state.presigner
    if presigner is None or not digests:
        return
    scope = upload_scope(record)

    def complete(digest: Digest) -> tuple[Digest, int] | None:
        try:
            size = presigner.complete_staged(
                ctx.signer.upload_id(record.id, str(digest)), digest, scope=scope
            )
        except NotFoundError:
            return None
        return digest, size

    done = [found for found in ctx.state.io_pool.map(complete, digests) if found is not None]
    possession.record_uploads(
        ctx.state.store, entity=record.entity, project=record.project, blobs=done
    )
