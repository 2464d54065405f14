"""Which blobs a manifest names: kept for recently read manifests, bounded in entries.

A server answers "does this version name this blob?" for every download from it without
reading the manifest again; an HTTP client finds which version it read names a blob it is
about to fetch, or that a commit may borrow. Both keep the same thing, the blob sizes of
a manifest (:meth:`~soko.core.manifest.Manifest.blob_sizes`), under a key of their own
(the manifest blob, or the version id), and drop the least recently used manifests once
the entries over all of them pass a limit.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping

from soko.core.digests import Digest

MEMBERSHIP_ENTRIES = 4_000_000
"""Digests kept over all manifests (about 100 bytes each)."""

Members = Mapping[Digest, int | None]
"""The blobs a manifest names, each with the size it gives it (None when unknown)."""


class MembershipCache:
    """Members by key, least recently used dropped first; safe to share between threads."""

    def __init__(self, max_entries: int = MEMBERSHIP_ENTRIES) -> None:
        self._max_entries = max_entries
        self._members: OrderedDict[str, Members] = OrderedDict()
        self._count = 0
        self._lock = threading.Lock()

    def get(self, key: str) -> Members | None:
        """The members kept under *key*, marked as just used; None when not kept."""
        with self._lock:
            members = self._members.get(key)
            if members is not None:
                self._members.move_to_end(key)
            return members

    def remember(self, key: str, members: Members) -> Members:
        """Keep *members* under *key*; when the key is kept already, its members stay (and
        are marked as just used). Returns what is kept under the key."""
        with self._lock:
            kept = self._members.get(key)
            if kept is not None:
                self._members.move_to_end(key)
                return kept
            self._members[key] = members
            self._count += len(members)
            # The newest is kept even when it alone passes the limit.
            while self._count > self._max_entries and len(self._members) > 1:
                _, dropped = self._members.popitem(last=False)
                self._count -= len(dropped)
            return members

    def newest_first(self) -> list[tuple[str, Members]]:
        """Every key with its members, most recently used first (a snapshot)."""
        with self._lock:
            return list(reversed(self._members.items()))
