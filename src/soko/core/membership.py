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

    def get_whole(self, key: str) -> Members | None:
        """The members kept under *key* if they are a whole manifest's (not gathered page
        by page), marked as just used; else None."""
        members = self.get(key)
        return None if isinstance(members, _Grown) else members

    def remember(self, key: str, members: Members) -> Members:
        """Keep *members* under *key*; when the key is kept already, its members stay (and
        are marked as just used), unless they were gathered page by page (:meth:`add`):
        the whole manifest's replace them. Returns what is kept under the key."""
        with self._lock:
            kept = self._members.get(key)
            if kept is not None and not isinstance(kept, _Grown):
                self._members.move_to_end(key)
                return kept
            if kept is not None:
                self._count -= len(kept)
            self._members[key] = members
            self._members.move_to_end(key)
            self._count += len(members)
            # The newest is kept even when it alone passes the limit.
            while self._count > self._max_entries and len(self._members) > 1:
                _, dropped = self._members.popitem(last=False)
                self._count -= len(dropped)
            return members

    def add(self, key: str, members: Members) -> None:
        """Add *members* to those kept under *key* (a page of a manifest read after
        another): the key then names the blobs of every page read."""
        with self._lock:
            kept = self._members.get(key)
            if kept is None:
                grown = _Grown(members)
            else:
                self._members.move_to_end(key)
                new = {d: s for d, s in members.items() if d not in kept}
                if not new:
                    return
                # Members kept from a whole manifest are shared (read-only): copied once.
                grown = kept if isinstance(kept, _Grown) else _Grown(kept)
                self._count -= len(kept)
                grown.update(new)
            self._members[key] = grown
            self._count += len(grown)
            while self._count > self._max_entries and len(self._members) > 1:
                _, dropped = self._members.popitem(last=False)
                self._count -= len(dropped)

    def newest_first(self) -> list[tuple[str, Members]]:
        """Every key with its members, most recently used first (a snapshot)."""
        with self._lock:
            return list(reversed(self._members.items()))


class _Grown(dict[Digest, int | None]):
    """Members this cache gathered page by page, its own to extend in place."""
