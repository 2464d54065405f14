"""S3BlobStore rules that only a remote bucket has: a failed PUT whose blob another writer
stored is forgiven, and one that left nothing is a StoreError, for single PUTs, multipart
uploads and checked presigned uploads alike (moto's server mode stands in for the bucket)."""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

import pytest

from soko.core.digests import Algorithm, Digest
from soko.errors import StoreError, ValidationError
from soko.storage.s3 import _SPOOL, S3BlobStore

pytestmark = pytest.mark.integration


class FlakyBucket:
    """A boto3 client whose uploads answer 500; with *lands*, each upload is stored
    first, as when a concurrent writer's PUT of the same blob succeeds."""

    def __init__(self, client: Any, *, lands: bool) -> None:
        self._client = client
        self._lands = lands
        self.failed: list[str] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def _error(self, operation: str) -> Exception:
        from botocore.exceptions import ClientError

        self.failed.append(operation)
        body = {"Error": {"Code": "InternalError", "Message": "We encountered an error"}}
        return ClientError(body, operation)  # type: ignore[arg-type]

    def put_object(self, **kwargs: Any) -> Any:
        if kwargs["Key"].endswith("format_version"):
            return self._client.put_object(**kwargs)
        if self._lands:
            self._client.put_object(**kwargs)
        raise self._error("PutObject")

    def upload_fileobj(self, stream: Any, bucket: str, key: str) -> None:
        from boto3.exceptions import S3UploadFailedError

        if self._lands:
            self._client.upload_fileobj(stream, bucket, key)
        raise S3UploadFailedError(f"Failed to upload: {self._error('CompleteMultipartUpload')}")

    def copy(self, source: dict[str, str], bucket: str, key: str, **kwargs: Any) -> None:
        if self._lands:
            self._client.copy(source, bucket, key, **kwargs)
        raise self._error("CopyObject")


@pytest.fixture
def bucket(s3_client: Any) -> str:
    name = f"soko-{uuid.uuid4().hex[:20]}"
    s3_client.create_bucket(Bucket=name)
    return name


SIZES = {"single": 100_000, "multipart": _SPOOL + 1, "staged": 200_000}


def random_blob(upload: str) -> tuple[bytes, Digest]:
    data = os.urandom(SIZES[upload])
    return data, Digest.of_bytes(data, Algorithm.XXH128)


def put(store: S3BlobStore, digest: Digest, data: bytes, upload: str, tmp: Path) -> None:
    """Store *data* in memory for a single PUT, from a file for a multipart upload, or as
    a presigned upload that the store checks and copies into place."""
    if upload == "single":
        store.put_bytes(digest, data)
        return
    if upload == "staged":
        upload_id = uuid.uuid4().hex
        bucket = store.client._client  # the upload itself succeeds; the copy may not
        bucket.put_object(Bucket=store.bucket, Key=store._staged_key(upload_id, "e/p"), Body=data)
        store.complete_staged(upload_id, digest, scope="e/p")
        return
    path = tmp / "blob"
    path.write_bytes(data)
    store.put_file(digest, str(path))


@pytest.mark.parametrize("upload", SIZES)
def test_a_failed_put_of_a_blob_another_writer_stored_is_done(
    s3_client: Any, bucket: str, upload: str, tmp_path: Path
) -> None:
    data, digest = random_blob(upload)
    flaky = FlakyBucket(s3_client, lands=True)

    put(S3BlobStore(bucket, "p", client=flaky), digest, data, upload, tmp_path)

    assert flaky.failed  # the bucket did answer with an error
    assert S3BlobStore(bucket, "p", client=s3_client).read_bytes(digest) == data


@pytest.mark.parametrize("upload", SIZES)
def test_a_failed_put_that_stored_nothing_is_a_store_error(
    s3_client: Any, bucket: str, upload: str, tmp_path: Path
) -> None:
    data, digest = random_blob(upload)
    store = S3BlobStore(bucket, "p", client=FlakyBucket(s3_client, lands=False))

    with pytest.raises(StoreError, match=f"Cannot write blob {digest}.*InternalError"):
        put(store, digest, data, upload, tmp_path)

    assert not store.exists(digest)


def test_a_presigned_upload_in_parts(s3_client: Any, bucket: str) -> None:
    """Parts PUT to presigned URLs, joined by their ETags, then checked like one upload;
    parts that do not join are a ValidationError and leave no blob."""
    import httpx

    store = S3BlobStore(bucket, "p", client=s3_client)
    data = os.urandom(5 * 1024 * 1024 + 100)  # S3's smallest part, and a last one
    parts = [data[: 5 * 1024 * 1024], data[5 * 1024 * 1024 :]]
    digest = Digest.of_bytes(data, Algorithm.MD5)
    upload_id = uuid.uuid4().hex
    multipart_id, urls = store.presign_staged_parts(upload_id, scope="e/p", parts=2, expires=60)
    etags = []
    for url, part in zip(urls, parts, strict=True):
        answer = httpx.put(url, content=part)
        assert answer.status_code == 200, answer.text
        etags.append(answer.headers["ETag"])
    with pytest.raises(ValidationError, match="do not join"):
        store.join_staged_parts(upload_id, multipart_id, [etags[0], etags[0]], scope="e/p")
    assert not store.exists(digest)
    store.join_staged_parts(upload_id, multipart_id, etags, scope="e/p")
    assert store.complete_staged(upload_id, digest, scope="e/p") == len(data)
    assert store.read_bytes(digest) == data
