"""New drafts by reference through a soko server: the
:class:`~soko.client.backend.KeepsDraftBase` half of :class:`soko.client.http.HttpBackend`.

A new draft of a large version keeps the version as its base (:class:`ServerBase`): the
base's index comes from the server (``GET /versions/{id}/manifest/index``, a few kilobytes
for a million entries, where building it again would read every entry), its bytes once
into the download cache, checked against the manifest's name, and a slice is read from
that file, checked against its index. The draft holds only the change.

Its log sends the change alone: the entries added or replaced as a manifest blob of their
own, the base version (``base_version``) and the paths of the base removed (``removed``);
the server splices the new manifest from the base's as the embedded store does
(:mod:`soko.service.layered`) and checks the change's blobs only. The client splices it
too, for the version digest a log asks before it commits (a re-log of the same content
goes to its twin), but uploads nothing of the base. A base of another project, or a
request other than a plain commit, is sent whole.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

from soko.client.cache import BlobCache
from soko.client.http_session import ApiSession
from soko.client.http_session import path_segment as _q
from soko.core.layered import LayeredManifest, ManifestBase
from soko.core.manifest import Manifest, ManifestRef
from soko.core.manifest_index import ManifestIndex, check_slice
from soko.core.records import VersionRecord
from soko.core.requests import CommitRequest
from soko.errors import CorruptBlobError, DigestMismatchError, NotFoundError
from soko.storage.base import read_exactly

_CHUNK = 1024 * 1024


class ServerBase:
    """Committed version *record* of the server *backend* talks to, as a draft's base
    (:class:`~soko.core.layered.ManifestBase`)."""

    def __init__(self, backend: HttpDraftBases, record: VersionRecord) -> None:
        assert record.manifest_blob is not None
        self._backend = backend
        self.record = record
        self.ref = ManifestRef.parse(record.manifest_blob)
        self.owner = backend.base_url
        """The server that holds it: a draft is committed by reference only there."""

    @property
    def key(self) -> str:
        return self.ref.key

    @cached_property
    def index(self) -> ManifestIndex:
        path = f"/versions/{_q(self.record.id)}/manifest/index"
        return ManifestIndex.from_bytes(self._backend.session.call("GET", path).content)

    def slice_bytes(self, number: int) -> bytes:
        part = self.index.slices[number]
        for attempt in range(2):
            try:
                with open(self._cached(), "rb") as handle:
                    handle.seek(part.offset)
                    raw = read_exactly(handle, part.length)
                check_slice(part, raw)
                return raw
            except FileNotFoundError:
                pass  # removed by a cleanup meanwhile: fetched again
            except CorruptBlobError:
                # Damaged on disk, or an index not of these bytes: the whole is checked
                # against its name (and fetched again when it does not match).
                if attempt:
                    raise
                self.raw()
        raise NotFoundError(f"The manifest {self.ref} could not be read from the cache.")

    def raw(self) -> bytes:
        for _ in range(2):
            try:
                with open(self._cached(), "rb") as handle:
                    raw = handle.read()
            except FileNotFoundError:
                continue
            try:
                self.ref.check(raw)
            except CorruptBlobError:
                self._backend.cache.evict(self.ref.digest)
                continue
            return raw
        raise CorruptBlobError(
            f"The manifest of {self.record.qualified_name} does not match its digest "
            f"{self.ref.digest}, in the cache and from the server."
        )

    def whole(self) -> Manifest:
        return self._backend.manifest(self.record)

    def _cached(self) -> str:
        """The manifest blob's file in the download cache, fetched (verified as it comes)
        when not there."""
        cache, digest = self._backend.cache, self.ref.digest
        found = cache.get(digest)
        if found is not None:
            return found
        session = self._backend.session
        path = f"/versions/{_q(self.record.id)}/manifest"

        def attempt() -> str:
            with session.stream("GET", path) as response:
                return cache.put_chunks(digest, response.iter_bytes(_CHUNK))

        try:
            return session.retrying(attempt)
        except DigestMismatchError as exc:
            raise CorruptBlobError(
                f"The manifest of {self.record.qualified_name} from the server does not "
                f"match its digest {digest}: {exc}"
            ) from None


class HttpDraftBases:
    """Mixed into HttpBackend: :class:`~soko.client.backend.KeepsDraftBase` over HTTP."""

    base_url: str
    session: ApiSession
    cache: BlobCache

    def manifest(self, record: VersionRecord) -> Manifest:
        raise NotImplementedError  # HttpBackend's

    def manifest_base(self, record: VersionRecord) -> ManifestBase | None:
        if record.manifest_blob is None:
            raise NotFoundError(f"Version {record.qualified_name} has no manifest yet.")
        base = ServerBase(self, record)
        try:
            base.index  # noqa: B018 (asked now: a server that predates the route has none)
        except NotFoundError:
            return None
        return base

    def holds_manifest_base(self, base: ManifestBase) -> bool:
        return isinstance(base, ServerBase) and base.owner == self.base_url

    def sent_by_reference(self, request: CommitRequest) -> LayeredManifest | None:
        """The request's manifest when it goes as a change over its base (a plain commit
        into the base's own project); None when it goes whole."""
        manifest = request.manifest
        if not isinstance(manifest, LayeredManifest) or request.incremental:
            return None
        base = manifest.base
        if request.distributed_id is not None or not self.holds_manifest_base(base):
            return None
        assert isinstance(base, ServerBase)
        if (base.record.entity, base.record.project) != (request.entity, request.project):
            return None
        return manifest


def change_of(manifest: LayeredManifest) -> Manifest:
    """The entries a layered manifest adds or replaces, as a manifest of their own (W&B's
    format: what is uploaded as the change's blob)."""
    return Manifest(manifest.changes, manifest.algorithm)


def reference_fields(manifest: LayeredManifest) -> dict[str, Any]:
    """The commit body's fields naming the base (``CommitIn.base_version``, ``removed``)."""
    base = manifest.base
    assert isinstance(base, ServerBase)
    return {"base_version": base.record.id, "removed": sorted(manifest.removed)}
