"""``gs://`` references: objects of Google Cloud Storage, tracked but not copied.

Entries are the ones W&B writes, byte for byte: the digest is the object's ``etag``, the size
its size, ``extra`` is ``{"versionID": generation}`` (an integer) and ``ref`` is
``gs://bucket/key``. ``#<generation>`` at the end of a URI selects that generation. A URI
that names no object (or ends in ``/``) is a folder: it expands to the objects under
``key/``, named by their path below it (under ``name/`` when given); keys ending in ``/``
are folder markers and are skipped, as W&B does. ``checksum=False`` records the URI itself
as the digest, without asking GCS anything.

Where soko departs from W&B (see docs/references.md): a prefix holding more than
``max_objects`` objects (default 10,000) is an error, not a silent truncation; a URI with
nothing at or under it is an error, not an empty list; ``gs://bucket`` expands to the whole
bucket (W&B fails).

The client is google-cloud-storage's, with its usual credentials; it talks to
``STORAGE_EMULATOR_HOST`` when that is set. It is imported only here, when a ``gs://``
reference is used.
"""

from __future__ import annotations

import contextlib
import functools
import os
import posixpath
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO
from urllib.parse import urlparse

from soko.core.manifest import Entry
from soko.errors import (
    AuthenticationError,
    DigestMismatchError,
    NotFoundError,
    PermissionDeniedError,
    StoreError,
    ValidationError,
)
from soko.refs.base import check_object_count, entry_path
from soko.terminal import timed_line

DEFAULT_MAX_OBJECTS = 10_000
# Everything that can change which endpoint, project or credentials the client uses; a
# client is cached per combination, so that a changed environment gets a new client.
_CLIENT_ENV = (
    "STORAGE_EMULATOR_HOST",
    "GOOGLE_APPLICATION_CREDENTIALS",
    "GOOGLE_CLOUD_PROJECT",
    "CLOUDSDK_CORE_PROJECT",
)


@dataclass(frozen=True, slots=True)
class GcsLocation:
    """The bucket, key and optional generation (``#123``) of a ``gs://`` URI."""

    bucket: str
    key: str
    generation: int | None = None

    @classmethod
    def parse(cls, uri: str) -> GcsLocation:
        parsed = urlparse(uri)
        if parsed.scheme.lower() != "gs" or not parsed.netloc:
            raise ValidationError(f"Not a gs://bucket/key URI: {uri!r}")
        generation: int | None = None
        if parsed.fragment:
            try:
                generation = int(parsed.fragment)
            except ValueError:
                raise ValidationError(
                    f"The fragment of {uri!r} must be an object generation (a number)."
                ) from None
        return cls(parsed.netloc, parsed.path.lstrip("/"), generation)

    @property
    def uri(self) -> str:
        """The URI without fragment, as W&B writes it in ``ref``."""
        return f"gs://{self.bucket}/{self.key}"

    def child(self, key: str) -> str:
        return f"gs://{self.bucket}/{key}"


def _folder_prefix(key: str) -> str:
    """The listing prefix of a folder URI: the key followed by one ``/`` (none at the root)."""
    return key if key == "" or key.endswith("/") else f"{key}/"


def _entry(blob: Any, *, path: str, ref: str) -> Entry:
    return Entry(
        path=path,
        digest=str(blob.etag),
        size=int(blob.size),
        ref=ref,
        extra={"versionID": int(blob.generation)},
    )


def _bucket(name: str) -> Any:
    return _cached_client(tuple(os.environ.get(var) for var in _CLIENT_ENV)).bucket(name)


@functools.lru_cache(maxsize=8)
def _cached_client(environment: tuple[str | None, ...]) -> Any:
    # The key only makes a changed environment miss the cache; Client() reads it itself.
    del environment
    from google.cloud import storage

    with _translate("Cannot create a Google Cloud Storage client"):
        return storage.Client()


@contextlib.contextmanager
def _translate(what: str) -> Iterator[None]:
    """Turn google-cloud's exceptions raised inside the block into soko's error tree."""
    from google.api_core import exceptions as api
    from google.auth import exceptions as auth
    from requests import RequestException

    try:
        yield
    except api.NotFound as exc:
        raise NotFoundError(f"{what}: {exc.message}") from exc
    except (api.Forbidden, api.Unauthorized) as exc:
        raise PermissionDeniedError(f"{what}: {exc.message}") from exc
    except api.GoogleAPIError as exc:
        raise StoreError(f"{what}: {exc}") from exc
    except auth.DefaultCredentialsError as exc:
        raise AuthenticationError(
            f"{what}: no Google Cloud credentials ({exc}). Run `gcloud auth "
            "application-default login` or set GOOGLE_APPLICATION_CREDENTIALS."
        ) from exc
    except (auth.GoogleAuthError, RequestException) as exc:
        raise StoreError(f"{what}: {exc}") from exc


class GcsHandler:
    """Entries and downloads of ``gs://`` references (see the module docstring)."""

    def entries(
        self, uri: str, *, name: str | None, checksum: bool, max_objects: int | None
    ) -> list[Entry]:
        location = GcsLocation.parse(uri)
        if not checksum:
            path = entry_path(None, name or location.key.rstrip("/") or location.bucket)
            return [Entry(path=path, digest=location.uri, ref=location.uri)]
        bucket = _bucket(location.bucket)
        if location.key and not location.key.endswith("/"):
            with _translate(f"Cannot read {uri!r}"):
                blob = bucket.get_blob(location.key, generation=location.generation)
            wanted = location.generation
            if blob is not None and (wanted is None or int(blob.generation) == wanted):
                path = entry_path(None, name or posixpath.basename(location.key))
                return [_entry(blob, path=path, ref=location.uri)]
            if wanted is not None:
                raise NotFoundError(f"No generation {wanted} of {location.uri!r} in GCS.")
        limit = max_objects or DEFAULT_MAX_OBJECTS
        with timed_line(
            f"Generating checksum for up to {limit} objects with prefix {location.key!r}... "
        ):
            return self._expand(bucket, location, name=name, limit=limit)

    def _expand(
        self, bucket: Any, location: GcsLocation, *, name: str | None, limit: int
    ) -> list[Entry]:
        prefix = _folder_prefix(location.key)
        found: list[Entry] = []
        seen_any = False
        with _translate(f"Cannot list {location.uri!r}"):
            for blob in bucket.list_blobs(prefix=prefix or None):
                seen_any = True
                blob_name = str(blob.name)
                if blob_name.endswith("/"):
                    continue
                check_object_count(len(found) + 1, limit, location.uri)
                found.append(
                    _entry(
                        blob,
                        path=entry_path(name, blob_name[len(prefix) :]),
                        ref=location.child(blob_name),
                    )
                )
        if not seen_any:
            raise NotFoundError(f"No GCS object at or under {location.uri!r}.")
        return found

    def fetch(self, entry: Entry, out: BinaryIO) -> None:
        if entry.ref is None:
            raise ValidationError(f"{entry.path!r} is not a reference.")
        location = GcsLocation.parse(entry.ref)
        bucket = _bucket(location.bucket)
        what = f"Cannot download {entry.ref!r}"
        if entry.digest == entry.ref:
            # checksum=False recorded no etag: whatever the object holds now is the content.
            with _translate(what):
                bucket.blob(location.key).download_to_file(out)
            return
        recorded = entry.extra.get("versionID")
        blob = None
        with _translate(what):
            if recorded is not None:
                blob = bucket.get_blob(location.key, generation=int(recorded))
                if blob is not None and int(blob.generation) != int(recorded):
                    blob = None
            if blob is None:
                # The generation is gone (the bucket keeps no versions): the newest object
                # is still right if its etag is the recorded one, as W&B accepts.
                blob = bucket.get_blob(location.key)
        if blob is None:
            raise NotFoundError(f"GCS object {entry.ref!r} does not exist any more.")
        if blob.etag != entry.digest:
            raise DigestMismatchError(
                f"GCS object {entry.ref!r} changed: expected etag {entry.digest!r}, "
                f"found {blob.etag!r}."
            )
        with _translate(what):
            # The blob carries its generation, so the download reads exactly the object
            # whose etag was just checked, even if the key is overwritten meanwhile.
            blob.download_to_file(out)
