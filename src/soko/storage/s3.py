"""A BlobStore in an S3-compatible bucket (boto3), under an optional key prefix.

Layout under ``s3://<bucket>/<prefix>``::

    format_version            "1\\n": the store's format; any other value is refused
    blobs/<alg>/<xx>/<hex>    one object per blob (see :func:`~.base.blob_key`)
    uploads/<scope>/<id>      presigned uploads waiting for their check (never a blob),
                              sent in one PUT or in parts (a multipart upload)

Write order, so that an object under ``blobs/`` always holds the bytes of its digest:

1. ``put_*`` hash the bytes while reading them once, into memory or a spooled temp file,
   and compare with the digest; on a mismatch nothing is sent.
2. The verified bytes are PUT (``Content-MD5`` set, so the bucket checks the transfer too),
   or uploaded in parts for large blobs. An S3 PUT is atomic: readers see the whole object
   or none, and a second writer of the same blob writes the same bytes.
3. A presigned upload goes to ``uploads/<scope>/<id>``, where ``<scope>`` is a hash of
   whom the upload is for (a server's project), so that only the one it was planned for
   can complete it; :meth:`S3BlobStore.complete_staged` then
   checks it (the bucket's MD5 ETag when it is one, else by reading it back and hashing),
   and copies it to its blob key only if the object still has the ETag that was checked,
   so a client cannot swap the bytes between the check and the copy.

Puts are durable when they return, so :meth:`S3BlobStore.sync` has nothing to do.
boto3 is imported here only (``pip install 'soko[cloud]'``).
"""

from __future__ import annotations

import base64
import hashlib
import io
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, BinaryIO, cast

from soko.core.digests import Algorithm, Digest
from soko.errors import NotFoundError, StoreError, ValidationError
from soko.storage.base import (
    FORMAT_VERSION,
    BlobInfo,
    blob_key,
    blob_not_found,
    digest_mismatch,
    digest_of_key,
    same_bytes,
)

MARKER_NAME = "format_version"
_CHUNK = 8 * 1024 * 1024
_SPOOL = 8 * 1024 * 1024
_WORKERS = 16
_ONE_COPY_MAX = 5 * 1024**3
"""S3 copies an object of up to 5 GiB in one request (the bucket does the work); above it
in parts of ``_COPY_PART``. boto3's default, parts of 8 MiB from 8 MiB on, makes 256
requests of a 2 GiB upload, which a loaded bucket answers too slowly."""
_COPY_PART = 512 * 1024 * 1024
_LIST_THRESHOLD = 256
"""From this many digests on, ``missing`` lists key prefixes instead of asking per blob."""


def _not_found(exc: Any) -> bool:
    code = str(exc.response.get("Error", {}).get("Code", ""))
    return code in ("404", "NoSuchKey", "NotFound")


def _md5_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data, usedforsecurity=False).digest()).decode()


class S3BlobStore:
    """Blobs as objects of *bucket* under *prefix*; see the module docstring."""

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint_url: str | None = None,
        client: Any = None,
    ) -> None:
        import boto3
        from boto3.s3.transfer import TransferConfig
        from botocore.config import Config

        self.bucket = bucket
        self.prefix = f"{prefix.strip('/')}/" if prefix.strip("/") else ""
        config = Config(signature_version="s3v4", max_pool_connections=_WORKERS * 2)
        self.client = client or boto3.session.Session().client(
            "s3", endpoint_url=endpoint_url, config=config
        )
        from botocore.exceptions import ClientError

        self._client_error: type[Exception] = ClientError
        self._copy_config = TransferConfig(
            multipart_threshold=_ONE_COPY_MAX, multipart_chunksize=_COPY_PART
        )
        self._check_marker()

    @classmethod
    def from_url(cls, url: str, *, endpoint_url: str | None = None) -> S3BlobStore:
        """The store at ``s3://bucket[/prefix]``."""
        if not url.startswith("s3://"):
            raise ValidationError(f"Not an s3:// URL: {url!r}")
        bucket, _, prefix = url[len("s3://") :].partition("/")
        if not bucket:
            raise ValidationError(f"No bucket in {url!r}: use s3://bucket/prefix.")
        return cls(bucket, prefix, endpoint_url=endpoint_url)

    def __repr__(self) -> str:
        return f"S3BlobStore('s3://{self.bucket}/{self.prefix}')"

    # -- opening -------------------------------------------------------------------------

    def _check_marker(self) -> None:
        key = self.prefix + MARKER_NAME
        expected = f"{FORMAT_VERSION}\n".encode()
        try:
            found = self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except self._client_error as exc:
            if not _not_found(exc):
                raise StoreError(f"Cannot open the store {self!r}: {exc}") from exc
            try:
                self.client.put_object(Bucket=self.bucket, Key=key, Body=expected)
            except self._client_error as put_exc:
                raise StoreError(f"Cannot create the store {self!r}: {put_exc}") from put_exc
            return
        if found != expected:
            raise StoreError(
                f"{self!r} has format version {found[:20]!r}; this soko knows {FORMAT_VERSION}."
            )

    def key(self, digest: Digest) -> str:
        return self.prefix + blob_key(digest)

    # -- questions -----------------------------------------------------------------------

    def _head(self, key: str) -> dict[str, Any] | None:
        try:
            return cast(dict[str, Any], self.client.head_object(Bucket=self.bucket, Key=key))
        except self._client_error as exc:
            if _not_found(exc):
                return None
            raise StoreError(f"Cannot read {key} in {self!r}: {exc}") from exc

    def exists(self, digest: Digest) -> bool:
        return self._head(self.key(digest)) is not None

    def missing(self, digests: Iterable[Digest]) -> set[Digest]:
        wanted = set(digests)
        if not wanted:
            return set()
        if len(wanted) < _LIST_THRESHOLD:
            with ThreadPoolExecutor(max_workers=_WORKERS) as pool:
                found = dict(zip(wanted, pool.map(self.exists, wanted), strict=True))
            return {d for d, there in found.items() if not there}
        # Many at once: list each fan-out folder that holds a wanted blob, a thousand
        # keys per request, instead of one request per blob.
        folders = {self.key(d).rsplit("/", 1)[0] + "/" for d in wanted}
        with ThreadPoolExecutor(max_workers=_WORKERS) as pool:
            present: set[str] = set()
            for keys in pool.map(self._keys_under, folders):
                present.update(keys)
        return {d for d in wanted if self.key(d) not in present}

    def _keys_under(self, folder: str) -> set[str]:
        return {obj["Key"] for obj in self._objects(folder)}

    def _objects(self, prefix: str) -> Iterator[dict[str, Any]]:
        paginator = self.client.get_paginator("list_objects_v2")
        try:
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
                yield from page.get("Contents", [])
        except self._client_error as exc:
            raise StoreError(f"Cannot list {prefix} in {self!r}: {exc}") from exc

    def stat(self, digest: Digest) -> BlobInfo:
        head = self._head(self.key(digest))
        if head is None:
            raise blob_not_found(digest)
        return BlobInfo(digest, int(head["ContentLength"]), head["LastModified"].timestamp())

    def list(self, algorithm: Algorithm | None = None) -> Iterator[BlobInfo]:
        folder = f"{self.prefix}blobs/" + (f"{algorithm.key}/" if algorithm else "")
        for obj in self._objects(folder):
            try:
                digest = digest_of_key(obj["Key"][len(self.prefix) :])
            except ValidationError:
                continue  # a stray object is never a blob
            yield BlobInfo(digest, int(obj["Size"]), obj["LastModified"].timestamp())

    # -- reading -------------------------------------------------------------------------

    def open(self, digest: Digest) -> BinaryIO:
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=self.key(digest))["Body"]
        except self._client_error as exc:
            if _not_found(exc):
                raise blob_not_found(digest) from None
            raise StoreError(f"Cannot read blob {digest} from {self!r}: {exc}") from exc
        return cast(BinaryIO, body)

    def read_bytes(self, digest: Digest) -> bytes:
        with self.open(digest) as reader:
            return reader.read()

    # -- writing -------------------------------------------------------------------------

    def put_bytes(self, digest: Digest, data: bytes) -> None:
        """Store *data*; when the blob exists, *data* is verified and compared with the
        stored object all the same (see the contract)."""
        if digest.algorithm.digest_of(data) != digest.raw:
            raise digest_mismatch(digest, "bytes")
        stored = self._open_stored(digest) if self.exists(digest) else None
        if stored is not None:
            with stored:
                same = same_bytes(stored, io.BytesIO(data))
            if self._keeps_stored(digest, same, "bytes"):
                return
        self._put_object(digest, data)

    def _open_stored(self, digest: Digest) -> BinaryIO | None:
        """A reader of the stored object, or None when there is none."""
        try:
            return self.open(digest)
        except NotFoundError:
            return None

    def _keeps_stored(self, digest: Digest, same: bool, source: str) -> bool:
        """Whether the stored object stays, for verified bytes of a blob that was stored:
        True when they are the *same* bytes; False when the caller is to upload them (the
        object is gone meanwhile, or fails its digest: damaged in the bucket). Bytes that
        differ from an intact object are other bytes with its digest: DigestMismatchError,
        as for bytes that do not hash to it."""
        if same:
            return True
        stored = self._open_stored(digest)
        if stored is None:
            return False
        hasher = digest.algorithm.hasher()
        with stored:
            while chunk := stored.read(_CHUNK):
                hasher.update(chunk)
        if hasher.digest() == digest.raw:
            raise digest_mismatch(digest, source)
        return False

    def _put_object(self, digest: Digest, data: bytes) -> None:
        key = self.key(digest)
        self._upload(
            digest,
            lambda: self.client.put_object(
                Bucket=self.bucket, Key=key, Body=data, ContentMD5=_md5_b64(data)
            ),
        )

    def _upload(self, digest: Digest, send: Callable[[], object]) -> None:
        """Run *send*; a failure is forgiven when the blob is there after all.

        Writers of one blob race (every thread of a step, every client of a team), and a
        bucket may answer one of them with an error while another's PUT lands. A key under
        ``blobs/`` only ever holds its digest's bytes, so finding it means the put is done.
        """
        from boto3.exceptions import S3UploadFailedError

        try:
            send()
        except (self._client_error, S3UploadFailedError) as exc:
            if self._head(self.key(digest)) is None:
                raise StoreError(f"Cannot write blob {digest} to {self!r}: {exc}") from exc

    def put_file(self, digest: Digest, path: str) -> int:
        with open(path, "rb") as stream:
            return self._put_stream(digest, stream, path)

    def put_stream(self, digest: Digest, stream: BinaryIO) -> int:
        """Hash *stream* into a spooled copy, check it, then upload the copy (when the blob
        exists, the copy is compared with the stored object, and nothing is uploaded when
        they are the same: the contract's rule)."""
        return self._put_stream(digest, stream, "stream")

    def _put_stream(self, digest: Digest, stream: BinaryIO, source: str) -> int:
        was_stored = self.exists(digest)
        hasher = digest.algorithm.hasher()
        size = 0
        with tempfile.SpooledTemporaryFile(max_size=_SPOOL) as spool:
            while chunk := stream.read(_CHUNK):
                hasher.update(chunk)
                spool.write(chunk)
                size += len(chunk)
            if hasher.digest() != digest.raw:
                raise digest_mismatch(digest, source)
            # Compared once the upload is spooled, not while it arrives: the bucket's
            # answer is then read at its own pace, never left waiting on a slow client.
            stored = self._open_stored(digest) if was_stored else None
            if stored is not None:
                spool.seek(0)
                with stored:
                    same = same_bytes(cast(BinaryIO, spool), stored)
                if self._keeps_stored(digest, same, source):
                    return size
            spool.seek(0)
            if size <= _SPOOL:
                self._put_object(digest, spool.read())
            else:
                key = self.key(digest)
                self._upload(digest, lambda: self.client.upload_fileobj(spool, self.bucket, key))
        return size

    def delete(self, digest: Digest) -> None:
        try:
            self.client.delete_object(Bucket=self.bucket, Key=self.key(digest))
        except self._client_error as exc:
            if not _not_found(exc):
                raise StoreError(f"Cannot delete blob {digest} from {self!r}: {exc}") from exc

    def sync(self) -> None:
        """Nothing to do: an S3 PUT is durable when it returns."""

    # -- presigned transfers ---------------------------------------------------------------

    def presign_get(self, digest: Digest, *, expires: int) -> str:
        url: str = self.client.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": self.key(digest)}, ExpiresIn=expires
        )
        return url

    def _staged_key(self, upload_id: str, scope: str) -> str:
        """Where the upload *upload_id* for *scope* lands: the same id completed for another
        scope names another key, where nothing was uploaded."""
        hashed = hashlib.sha256(scope.encode("utf-8")).hexdigest()[:32]
        return f"{self.prefix}uploads/{hashed}/{upload_id}"

    def presign_staged_put(
        self, upload_id: str, digest: Digest, *, scope: str, size: int, expires: int
    ) -> tuple[str, dict[str, str]]:
        """A URL to PUT the blob's bytes to the upload's staging key (for *scope*, whom the
        upload is for), and headers to send."""
        del digest, size  # checked at completion, whatever the client sends
        url: str = self.client.generate_presigned_url(
            "put_object",
            Params={"Bucket": self.bucket, "Key": self._staged_key(upload_id, scope)},
            ExpiresIn=expires,
        )
        return url, {}

    def presign_staged_parts(
        self, upload_id: str, *, scope: str, parts: int, expires: int
    ) -> tuple[str, Sequence[str]]:
        """Start a multipart upload to the upload's staging key (for *scope*); returns the
        bucket's id of it and a presigned URL to PUT each of its *parts* (numbered from 1).
        The parts are joined by :meth:`join_staged_parts`, then checked and made a blob by
        :meth:`complete_staged` like a single upload."""
        key = self._staged_key(upload_id, scope)
        try:
            started = self.client.create_multipart_upload(Bucket=self.bucket, Key=key)
        except self._client_error as exc:
            raise StoreError(f"Cannot start an upload to {key} in {self!r}: {exc}") from exc
        multipart_id = str(started["UploadId"])
        urls = [
            str(
                self.client.generate_presigned_url(
                    "upload_part",
                    Params={
                        "Bucket": self.bucket,
                        "Key": key,
                        "UploadId": multipart_id,
                        "PartNumber": number,
                    },
                    ExpiresIn=expires,
                )
            )
            for number in range(1, parts + 1)
        ]
        return multipart_id, urls

    def join_staged_parts(
        self, upload_id: str, multipart_id: str, etags: Sequence[str], *, scope: str
    ) -> None:
        """Join the parts of the multipart upload *multipart_id* to the staging key (part
        ``i + 1`` has the ETag ``etags[i]``); nothing to do when they were joined already.
        ValidationError when the bucket refuses the parts (one missing, or an ETag that is
        not the part's)."""
        key = self._staged_key(upload_id, scope)
        parts = [{"PartNumber": i + 1, "ETag": etag} for i, etag in enumerate(etags)]
        try:
            self.client.complete_multipart_upload(
                Bucket=self.bucket,
                Key=key,
                UploadId=multipart_id,
                MultipartUpload={"Parts": parts},
            )
        except self._client_error as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))  # type: ignore[attr-defined]
            if code == "NoSuchUpload" and self._head(key) is not None:
                return  # joined already (by another process of the server, say)
            if code in ("InvalidPart", "InvalidPartOrder", "NoSuchUpload", "EntityTooSmall"):
                message = f"The parts of upload {upload_id} do not join: {exc}"
                raise ValidationError(message) from exc
            raise StoreError(f"Cannot join the parts of {key} in {self!r}: {exc}") from exc

    def complete_staged(self, upload_id: str, digest: Digest, *, scope: str) -> int:
        """Check the staged upload for *scope* against *digest* and make it the blob;
        returns its size.

        DigestMismatchError (the staged object is deleted) when the bytes differ;
        NotFoundError when nothing was uploaded for *scope* under that id.
        """
        staged = self._staged_key(upload_id, scope)
        head = self._head(staged)
        if head is None:
            raise NotFoundError(f"Nothing was uploaded for upload {upload_id}.")
        etag, size = str(head["ETag"]), int(head["ContentLength"])
        if not (digest.algorithm is Algorithm.MD5 and etag.strip('"') == digest.hex):
            # Not the bucket's MD5 of a one-part upload: read the bytes back and hash them.
            etag, size = self._hash_object(staged, digest)
        try:
            stored = self._open_stored(digest)
            if stored is not None:
                with stored, self._read_staged(staged, etag) as uploaded:
                    same = same_bytes(uploaded, stored)
                if self._keeps_stored(digest, same, "the upload"):
                    return size
            self._upload(
                digest,
                lambda: self.client.copy(
                    {"Bucket": self.bucket, "Key": staged},
                    self.bucket,
                    self.key(digest),
                    ExtraArgs={"CopySourceIfMatch": etag},
                    Config=self._copy_config,
                ),
            )
        finally:
            self.client.delete_object(Bucket=self.bucket, Key=staged)
        return size

    def _read_staged(self, key: str, etag: str) -> BinaryIO:
        """The staged object that was checked (its ETag), for the comparison with a stored
        copy: the client cannot swap the bytes in between."""
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=key, IfMatch=etag)
        except self._client_error as exc:
            raise StoreError(f"Cannot read the upload {key} in {self!r}: {exc}") from exc
        return cast(BinaryIO, response["Body"])

    def _hash_object(self, key: str, digest: Digest) -> tuple[str, int]:
        """Hash the object at *key*; returns the ETag and the size of what was hashed."""
        response = self.client.get_object(Bucket=self.bucket, Key=key)
        hasher = digest.algorithm.hasher()
        size = 0
        with response["Body"] as body:
            while chunk := body.read(_CHUNK):
                hasher.update(chunk)
                size += len(chunk)
        if hasher.digest() != digest.raw:
            self.client.delete_object(Bucket=self.bucket, Key=key)
            raise digest_mismatch(digest, "the upload")
        return str(response["ETag"]), size
