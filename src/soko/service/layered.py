"""Committing a manifest made from a stored version and a change
(:class:`soko.core.layered.LayeredManifest`), in proportion to the change.

:class:`StoredBase` is a committed version's manifest as a draft's base: its index and its
slices read through :mod:`soko.service.pages`. At commit, :func:`put_manifest` stores the
spliced blob and the index made with it (no scan of the new manifest), and
:func:`require_stored` checks the change's blobs only, which is enough while the base
version is still committed (checked in the commit's transaction, under the lock garbage
collection deletes under: a committed version's blobs are stored) and the quarantine holds
nothing (a blob of the base found damaged there would be missing). Otherwise every blob of
the whole manifest is checked, as a plain commit does.
"""

from __future__ import annotations

from functools import cached_property

from sqlalchemy import Connection, select

from soko.core.digests import Algorithm
from soko.core.layered import LayeredManifest
from soko.core.manifest import Manifest, ManifestRef
from soko.core.manifest_index import ManifestIndex
from soko.core.records import COMMITTED
from soko.errors import NotFoundError
from soko.metadata.schema import versions
from soko.service import pages, possession
from soko.service.store import INDEX_AT_COMMIT, Store


class StoredBase:
    """The manifest of committed version *version_id* of *store*, as a draft's base
    (:class:`soko.core.layered.ManifestBase`)."""

    def __init__(
        self, store: Store, *, version_id: str, key: str, algorithm: Algorithm, owner: str
    ) -> None:
        self.store = store
        self.version_id = version_id
        self.ref = ManifestRef.parse(key)
        self.algorithm = algorithm
        self.owner = owner
        """Which store holds it (the caller's name for it): a draft is committed by
        reference only into that store."""

    @property
    def key(self) -> str:
        return self.ref.key

    @cached_property
    def index(self) -> ManifestIndex:
        return pages.index_of(self.store, self.ref)

    def slice_bytes(self, number: int) -> bytes:
        return pages.read_slice(self.store, self.ref, self.index.slices[number])

    def raw(self) -> bytes:
        try:
            return self.store.manifest_bytes(self.ref)
        except NotFoundError:
            raise NotFoundError(
                f"The manifest of the version this draft was made from ({self.ref}) is no "
                "longer stored: the version was deleted and its blobs collected."
            ) from None

    def whole(self) -> Manifest:
        return self.store.load_manifest(self.ref, self.algorithm)


def put_manifest(store: Store, manifest: LayeredManifest) -> str:
    """Store the spliced manifest blob and its index; returns its key. The bytes are let
    go afterwards (the manifest keeps its digest, count and size)."""
    spliced = manifest.spliced()
    key = spliced.ref.key
    store.blobs.put_bytes(spliced.ref.digest, spliced.raw)
    if spliced.count >= INDEX_AT_COMMIT and store.known_index(key) is None:
        store.save_index(key, spliced.index)
        store.keep_index(key, spliced.index)
    manifest.release_bytes()
    return key


def require_stored(store: Store, conn: Connection, manifest: LayeredManifest, *, name: str) -> None:
    """Raise MissingBlobsError unless every blob *manifest* names is stored; inside the
    commit's transaction, after its collection lock."""
    base = manifest.base
    live = (
        isinstance(base, StoredBase)
        and base.store is store
        and _committed(conn, base.version_id, base.key)
        and _nothing_set_aside(store)
    )
    digests = manifest.blob_digests() if live else manifest.whole().blob_digests()
    missing = store.blobs.missing(digests)
    if missing:
        raise possession.not_stored(name, missing)


def _nothing_set_aside(store: Store) -> bool:
    quarantine = store.quarantine
    return quarantine is None or quarantine.is_empty()


def _committed(conn: Connection, version_id: str, key: str) -> bool:
    row = conn.execute(
        select(versions.c.state, versions.c.manifest_blob).where(versions.c.id == version_id)
    ).first()
    return row is not None and row.state == COMMITTED and row.manifest_blob == key
