"""Which versions an HTTP client read or logged, and the blobs each names.

The server serves a blob only through a version that names it, and a commit may name,
without uploading them, only blobs its project uploaded or that a version the client
names as a source holds: so the client remembers, for each version it read (or logged),
the blobs its manifest names (:class:`~soko.core.membership.MembershipCache`). The
version it logged last is kept as its manifest, its members made only when a download
or a commit asks: a process that logs a million files and exits never makes them.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence

from soko.core.digest_index import members_of
from soko.core.digests import Digest, digest_batches
from soko.core.manifest import Manifest
from soko.core.membership import Members, MembershipCache
from soko.errors import NotFoundError
from soko.wire.requests import MAX_SOURCES


class KnownVersions:
    """The versions half of :class:`~soko.client.http.HttpBackend`; it sets the
    attributes below."""

    _lock: threading.Lock
    _members: MembershipCache
    _logged: tuple[str, Manifest] | None
    """The version logged last, with its manifest, until its members are asked for."""

    def _versions_for(
        self, digests: Sequence[Digest]
    ) -> dict[str, list[tuple[Digest, int | None]]]:
        """Group *digests* by a version this client read whose manifest names them, each
        with the size that manifest gives it."""
        grouped: dict[str, list[tuple[Digest, int | None]]] = {}
        known = self._known_members()
        for digest in digests:
            for version_id, members in known:
                size = members.get(digest, -1)
                if size != -1:
                    grouped.setdefault(version_id, []).append((digest, size))
                    break
            else:
                raise NotFoundError(
                    f"Blob {digest} is not named by any artifact version this client has read; "
                    "read the artifact's manifest first."
                )
        return grouped

    def _sources_for(self, digests: Iterable[Digest]) -> list[str]:
        """The versions this client read whose manifests name some of *digests*, most
        recently read first: a commit may name their blobs without uploading them.
        *digests* is read a batch at a time, once, and not at all by a client that read
        no version."""
        known = self._known_members()
        if not known:
            return []
        named: set[str] = set()
        for batch in digest_batches(digests):
            part = list(batch)
            for version_id, members in known:
                if version_id not in named and not members.keys().isdisjoint(part):
                    named.add(version_id)
            if len(named) == len(known):
                break
        return [version_id for version_id, _ in known if version_id in named][:MAX_SOURCES]

    def _remember(self, version_id: str, manifest: Manifest) -> None:
        # Kept already, the whole manifest's members stay; pages read before it give way.
        self._members.remember(version_id, members_of(manifest))

    def _remember_logged(self, version_id: str, manifest: Manifest) -> None:
        """Remember the version just logged, its members made only when asked for."""
        self._known_members()  # the one logged before, made now: it is not forgotten
        with self._lock:
            self._logged = (version_id, manifest)

    def _known_members(self) -> list[tuple[str, Members]]:
        """Every version this client may fetch from or borrow from, with its members, most
        recently used first (the one logged last made into members first)."""
        # Made under the lock: a thread asking while another makes them would otherwise
        # find the logged version in neither place.
        with self._lock:
            if self._logged is not None:
                self._remember(*self._logged)
                self._logged = None
        return self._members.newest_first()
