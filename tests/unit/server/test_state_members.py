"""The members of a version's manifest are made once, however many requests ask at once,
and not at all for a download of pages read before.

A download's first requests come together (a client keeps several batches in flight), and
before any has made the members each would read and parse the same manifest: at a million
entries, some 300 MB beside each other. The fake store counts the parses; the first one is
held until the second request has had the chance to start one of its own.
"""

from __future__ import annotations

import hashlib
import threading
from types import SimpleNamespace
from typing import Any, cast

import pytest

from soko.core.digests import Algorithm, Digest
from soko.core.entries import b64_of
from soko.core.manifest import Entry, Manifest, ManifestRef
from soko.core.manifest_index import EntriesPage
from soko.core.records import VersionRecord
from soko.errors import NotFoundError
from soko.server.config import ServerConfig
from soko.server.state import ServerState
from soko.service.store import Store

KEY = "xxh128:" + "ab" * 16


class CountingStore:
    """Answers the two questions blob_sizes asks of a store, counting the parses."""

    def __init__(self) -> None:
        self.manifest = Manifest.of(
            [Entry(f"f{i}", b64_of(hashlib.md5(str(i).encode()).digest()), i) for i in range(50)]
        )
        self.blobs = SimpleNamespace(stat=lambda digest: SimpleNamespace(size=100))
        self.parses = 0
        self.parsing = threading.Event()
        self.second_parse = threading.Event()
        self.release = threading.Event()

    def load_manifest(self, ref: ManifestRef, algorithm: Algorithm, **_: Any) -> Manifest:
        self.parses += 1
        if self.parses == 1:
            self.parsing.set()
            self.release.wait()
        else:
            self.second_parse.set()
        return self.manifest


def _state_of(store: CountingStore) -> ServerState:
    return ServerState(
        store=cast(Store, store), config=ServerConfig(db_url="sqlite://", store_url="memory://")
    )


RECORD = cast(
    VersionRecord,
    SimpleNamespace(manifest_blob=KEY, qualified_name="e/p/data:v0", algorithm="md5"),
)


def _digest(i: int) -> Digest:
    return Digest(Algorithm.MD5, hashlib.md5(str(i).encode()).digest())


def test_requests_that_come_together_parse_the_manifest_once() -> None:
    store = CountingStore()
    state = _state_of(store)
    record = RECORD
    found: list[object] = []

    def ask() -> None:
        found.append(state.blob_sizes(record))

    first = threading.Thread(target=ask)
    first.start()
    assert store.parsing.wait(timeout=30)
    second = threading.Thread(target=ask)
    second.start()
    # Without the lock the second request parses too while the first is held; with it, it
    # waits for the first, and this wait ends at its timeout with no second parse.
    second_parsed = store.second_parse.wait(timeout=1)
    store.release.set()
    first.join()
    second.join()
    assert not second_parsed
    assert store.parses == 1
    assert len(found) == 2 and found[0] is found[1]
    assert found[0][_digest(7)] == 7  # type: ignore[index]


def test_blobs_of_a_page_read_before_are_fetched_without_parsing_the_manifest() -> None:
    store = CountingStore()
    store.release.set()
    state = _state_of(store)
    page = [store.manifest.entries[f"f{i}"] for i in range(10, 20)]
    state.remember_page(ManifestRef.parse(KEY), EntriesPage(page, "f19", 50))

    sizes = state.require_members(RECORD, [_digest(12), _digest(19)])
    assert store.parses == 0
    assert sizes[_digest(12)] == 12

    # A blob of the version outside the pages read: the manifest answers, once.
    assert state.require_members(RECORD, [_digest(12), _digest(30)])[_digest(30)] == 30
    assert store.parses == 1
    with pytest.raises(NotFoundError, match="not part of e/p/data:v0"):
        state.require_members(RECORD, [_digest(12), _digest(99)])
    assert store.parses == 1
    # What a commit borrows is the whole manifest's, not the pages'.
    assert len(state.blob_sizes(RECORD)) == 50


def test_a_page_does_not_stand_for_the_whole_manifest() -> None:
    store = CountingStore()
    store.release.set()
    state = _state_of(store)
    page = [store.manifest.entries[f"f{i}"] for i in range(5)]
    state.remember_page(ManifestRef.parse(KEY), EntriesPage(page, "f4", 50))
    assert len(state.blob_sizes(RECORD)) == 50
    assert store.parses == 1


def test_a_page_with_an_entry_that_names_no_blob_is_not_noted() -> None:
    store = CountingStore()
    store.release.set()
    state = _state_of(store)
    odd = Entry("odd.bin", "not a digest", 3)
    state.remember_page(ManifestRef.parse(KEY), EntriesPage([odd], None, 1))
    assert state._members.get(KEY) is None
