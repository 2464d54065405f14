"""``s3://`` references: objects of S3 or an S3-compatible store, tracked but not copied.

Entries are the ones W&B writes, byte for byte: the digest is the object's ETag without its
quotes, ``extra`` holds ``etag`` (the same text) and, when the bucket keeps versions,
``versionID``; ``ref`` is ``s3://bucket/key`` without the query. ``?versionId=`` in a URI
selects that version. A URI that names no object (or ends in ``/``) is a folder: it expands
to the objects under ``key/``, named by their path below it (under ``name/`` when given);
empty objects and keys ending in ``/`` are folder markers and are skipped, as W&B does.
``checksum=False`` records the URI itself as the digest, without asking S3 anything.

Where soko departs from W&B (see docs/references.md): a prefix holding more than
``max_objects`` objects (default 10,000) is an error, not a silent truncation; a URI with
nothing at or under it is an error, not an empty list; ``?versionId=`` records that version
(W&B records the newest); a single empty object is kept.

The endpoint is ``AWS_S3_ENDPOINT_URL`` (W&B's variable) when set, else boto3's own
``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL``; the region is ``AWS_REGION`` when set (as in
W&B), else boto3's; credentials come from boto3's usual chain. boto3 is imported only here,
when an ``s3://`` reference is used.
"""

from __future__ import annotations

import contextlib
import functools
import os
import posixpath
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, BinaryIO
from urllib.parse import parse_qsl, urlparse

from soko.core.manifest import Entry
from soko.errors import (
    AuthenticationError,
    DigestMismatchError,
    NotFoundError,
    PermissionDeniedError,
    SokoError,
    StoreError,
    ValidationError,
)
from soko.refs.base import check_object_count, entry_path
from soko.terminal import timed_line

DEFAULT_MAX_OBJECTS = 10_000
_CHUNK = 1024 * 1024
# Without ListBucketVersions, each listed object needs a HEAD to learn its version;
# they are independent round trips, so run them side by side.
_HEAD_WORKERS = 16
_NOT_FOUND_CODES = frozenset({"404", "NoSuchKey", "NoSuchVersion", "NoSuchBucket"})
_DENIED_CODES = frozenset({"403", "AccessDenied", "AllAccessDisabled"})
_PRECONDITION_CODES = frozenset({"412", "PreconditionFailed"})
# Everything that can change which endpoint, region or credentials boto3 uses; a client is
# cached per combination, so that a changed environment gets a new client.
_CLIENT_ENV = (
    "AWS_S3_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_ENDPOINT_URL",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_PROFILE",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
)


@dataclass(frozen=True, slots=True)
class S3Location:
    """The bucket, key and optional ``versionId`` of an ``s3://`` URI."""

    bucket: str
    key: str
    version_id: str | None = None

    @classmethod
    def parse(cls, uri: str) -> S3Location:
        parsed = urlparse(uri)
        if parsed.scheme.lower() != "s3" or not parsed.netloc:
            raise ValidationError(f"Not an s3://bucket/key URI: {uri!r}")
        version_id = dict(parse_qsl(parsed.query)).get("versionId") or None
        return cls(parsed.netloc, parsed.path[1:], version_id)

    @property
    def uri(self) -> str:
        """The URI without query, as W&B writes it in ``ref``."""
        return f"s3://{self.bucket}/{self.key}"

    def child(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"


@dataclass(frozen=True, slots=True)
class _Listed:
    """One object of a listing; ``version_id`` is None when the listing could not say."""

    key: str
    etag: str
    size: int
    version_id: str | None
    version_known: bool


class _ObjectChanged(Exception):
    """The object no longer has the ETag a download asked for."""


def _unquote(etag: str) -> str:
    # S3 sends ETags in double quotes; W&B records them without. Some S3-compatible stores
    # send them bare, which W&B's [1:-1] would mangle, so strip only quotes that are there.
    if len(etag) >= 2 and etag.startswith('"') and etag.endswith('"'):
        return etag[1:-1]
    return etag


def _folder_prefix(key: str) -> str:
    """The listing prefix of a folder URI: the key followed by one ``/`` (none at the root)."""
    return key if key == "" or key.endswith("/") else f"{key}/"


def _entry(*, path: str, ref: str, etag: str, size: int, version_id: str | None) -> Entry:
    digest = _unquote(etag)
    extra: dict[str, Any] = {"etag": digest}
    # A bucket that never had versioning reports no version, or "null" once it was suspended.
    if version_id and version_id != "null":
        extra["versionID"] = version_id
    return Entry(path=path, digest=digest, size=size, ref=ref, extra=extra)


def _client() -> Any:
    return _cached_client(tuple(os.environ.get(name) for name in _CLIENT_ENV))


@functools.lru_cache(maxsize=8)
def _cached_client(environment: tuple[str | None, ...]) -> Any:
    import boto3
    from botocore.config import Config

    settings = dict(zip(_CLIENT_ENV, environment, strict=True))
    with _translate("Cannot create an S3 client"):
        return boto3.session.Session().client(
            "s3",
            # Passing None lets boto3 apply AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL itself.
            endpoint_url=settings["AWS_S3_ENDPOINT_URL"] or None,
            region_name=settings["AWS_REGION"] or None,
            config=Config(max_pool_connections=32, retries={"mode": "standard"}),
        )


def _error_code(exc: Any) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


@contextlib.contextmanager
def _translate(what: str) -> Iterator[None]:
    """Turn botocore's exceptions raised inside the block into soko's error tree."""
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        NoCredentialsError,
        PartialCredentialsError,
    )

    try:
        yield
    except ClientError as exc:
        code = _error_code(exc)
        message = exc.response.get("Error", {}).get("Message", "")
        cls: type[SokoError]
        if code in _NOT_FOUND_CODES:
            cls = NotFoundError
        elif code in _DENIED_CODES:
            cls = PermissionDeniedError
        else:
            cls = StoreError
        raise cls(f"{what}: S3 answered {code} {message}".rstrip()) from exc
    except (NoCredentialsError, PartialCredentialsError) as exc:
        raise AuthenticationError(
            f"{what}: no AWS credentials ({exc}). Set AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY, or AWS_PROFILE."
        ) from exc
    except BotoCoreError as exc:
        raise StoreError(f"{what}: {exc}") from exc


class S3Handler:
    """Entries and downloads of ``s3://`` references (see the module docstring)."""

    def entries(
        self, uri: str, *, name: str | None, checksum: bool, max_objects: int | None
    ) -> list[Entry]:
        location = S3Location.parse(uri)
        if not checksum:
            path = entry_path(None, name or location.key.rstrip("/") or location.bucket)
            return [Entry(path=path, digest=location.uri, ref=location.uri)]
        client = _client()
        if location.key and not location.key.endswith("/"):
            head = _head(client, location)
            if head is not None and "x-directory" not in str(head.get("ContentType", "")):
                return [
                    _entry(
                        path=entry_path(None, name or posixpath.basename(location.key)),
                        ref=location.uri,
                        etag=str(head["ETag"]),
                        size=int(head["ContentLength"]),
                        version_id=head.get("VersionId"),
                    )
                ]
            if head is None and location.version_id is not None:
                raise NotFoundError(
                    f"No version {location.version_id!r} of {location.uri!r} in S3."
                )
        limit = max_objects or DEFAULT_MAX_OBJECTS
        where = f"{location.bucket}/{location.key}"
        with timed_line(f'Generating checksum for up to {limit} objects in "{where}"... '):
            return self._expand(client, location, name=name, limit=limit)

    def _expand(
        self, client: Any, location: S3Location, *, name: str | None, limit: int
    ) -> list[Entry]:
        prefix = _folder_prefix(location.key)
        listed: list[_Listed] = []
        seen_any = False
        for item in _list_current(client, location.bucket, prefix):
            seen_any = True
            if item.size == 0 or item.key.endswith("/"):
                continue
            check_object_count(len(listed) + 1, limit, location.uri)
            listed.append(item)
        if not seen_any:
            raise NotFoundError(f"No S3 object at or under {location.uri!r}.")
        listed = _fill_versions(client, location.bucket, listed)
        return [
            _entry(
                path=entry_path(name, item.key[len(prefix) :]),
                ref=location.child(item.key),
                etag=item.etag,
                size=item.size,
                version_id=item.version_id,
            )
            for item in listed
        ]

    def fetch(self, entry: Entry, out: BinaryIO) -> None:
        if entry.ref is None:
            raise ValidationError(f"{entry.path!r} is not a reference.")
        location = S3Location.parse(entry.ref)
        client = _client()
        if entry.digest == entry.ref:
            # checksum=False recorded no ETag: whatever the object holds now is the content.
            _download(client, location, version_id=None, etag=None, out=out)
            return
        version = entry.extra.get("versionID")
        if isinstance(version, str) and version:
            try:
                _download(client, location, version_id=version, etag=entry.digest, out=out)
            except _ObjectChanged:
                raise DigestMismatchError(
                    f"S3 object {entry.ref!r} version {version!r} no longer has ETag "
                    f"{entry.digest!r}."
                ) from None
            return
        try:
            _download(client, location, version_id=None, etag=entry.digest, out=out)
            return
        except _ObjectChanged:
            pass
        # The object was overwritten; a bucket versioned since may still hold the old bytes.
        older = _find_version(client, location, entry.digest)
        if older is None:
            raise DigestMismatchError(
                f"S3 object {entry.ref!r} changed: it no longer has ETag {entry.digest!r} "
                "and no stored version of it does."
            )
        try:
            _download(client, location, version_id=older, etag=entry.digest, out=out)
        except _ObjectChanged:
            raise DigestMismatchError(
                f"S3 object {entry.ref!r} changed while it was being fetched."
            ) from None


def _head(client: Any, location: S3Location) -> dict[str, Any] | None:
    """The object's HEAD response, or None when there is no such object (or version)."""
    from botocore.exceptions import ClientError

    kwargs: dict[str, Any] = {"Bucket": location.bucket, "Key": location.key}
    if location.version_id is not None:
        kwargs["VersionId"] = location.version_id
    with _translate(f"Cannot read {location.uri!r}"):
        try:
            response: dict[str, Any] = client.head_object(**kwargs)
        except ClientError as exc:
            if _error_code(exc) in _NOT_FOUND_CODES - {"NoSuchBucket"}:
                return None
            raise
    return response


def _list_current(client: Any, bucket: str, prefix: str) -> Iterator[_Listed]:
    """The current objects under *prefix*, in key order.

    One ListObjectVersions pass gives every object's ETag, size and version at once; a store
    or policy that refuses it falls back to ListObjectsV2, whose objects lack the version.
    """
    from botocore.exceptions import ClientError

    produced = False
    with _translate(f"Cannot list s3://{bucket}/{prefix}"):
        try:
            for page in client.get_paginator("list_object_versions").paginate(
                Bucket=bucket, Prefix=prefix
            ):
                for version in page.get("Versions", []):
                    # Older versions, and keys whose newest version is a delete marker, are
                    # not current objects.
                    if version.get("IsLatest"):
                        produced = True
                        yield _Listed(
                            key=version["Key"],
                            etag=version["ETag"],
                            size=int(version["Size"]),
                            version_id=version.get("VersionId"),
                            version_known=True,
                        )
            return
        except ClientError as exc:
            if produced or _error_code(exc) == "NoSuchBucket":
                raise
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                yield _Listed(
                    key=obj["Key"],
                    etag=obj["ETag"],
                    size=int(obj["Size"]),
                    version_id=None,
                    version_known=False,
                )


def _fill_versions(client: Any, bucket: str, listed: list[_Listed]) -> list[_Listed]:
    """Ask S3 for the version of each object whose listing did not carry it."""
    missing = [item for item in listed if not item.version_known]
    if not missing:
        return listed

    def with_version(item: _Listed) -> _Listed:
        head = _head(client, S3Location(bucket, item.key))
        version_id = head.get("VersionId") if head is not None else None
        return _Listed(item.key, item.etag, item.size, version_id, True)

    with ThreadPoolExecutor(max_workers=min(_HEAD_WORKERS, len(missing))) as pool:
        resolved = dict(zip((i.key for i in missing), pool.map(with_version, missing), strict=True))
    return [resolved.get(item.key, item) for item in listed]


def _find_version(client: Any, location: S3Location, digest: str) -> str | None:
    """The id of a stored version of the object whose ETag is *digest*, if any."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        for page in client.get_paginator("list_object_versions").paginate(
            Bucket=location.bucket, Prefix=location.key
        ):
            for version in page.get("Versions", []):
                if version["Key"] == location.key and _unquote(version["ETag"]) == digest:
                    return str(version["VersionId"])
    except (ClientError, BotoCoreError):
        # Without access to versions there is nothing older to find; the caller reports
        # the mismatch it already saw.
        return None
    return None


def _download(
    client: Any,
    location: S3Location,
    *,
    version_id: str | None,
    etag: str | None,
    out: BinaryIO,
) -> None:
    """Stream one object into *out*; raise _ObjectChanged before writing if its ETag differs.

    If-Match makes S3 itself refuse a changed object, so the check and the bytes come from
    the same object even when it is being overwritten; the ETag of the response is checked
    as well, for stores that ignore If-Match.
    """
    from botocore.exceptions import ClientError

    kwargs: dict[str, Any] = {"Bucket": location.bucket, "Key": location.key}
    if version_id is not None:
        kwargs["VersionId"] = version_id
    if etag is not None:
        kwargs["IfMatch"] = f'"{etag}"'
    with _translate(f"Cannot download {location.uri!r}"):
        try:
            response = client.get_object(**kwargs)
        except ClientError as exc:
            if _error_code(exc) in _PRECONDITION_CODES:
                raise _ObjectChanged() from exc
            raise
        body = response["Body"]
        try:
            if etag is not None and _unquote(str(response.get("ETag", ""))) != etag:
                raise _ObjectChanged()
            for chunk in body.iter_chunks(_CHUNK):
                out.write(chunk)
        finally:
            body.close()
