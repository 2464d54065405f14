"""The members of a version's manifest are made once, however many requests ask at once.

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

from soko.core.digests import Algorithm, Digest
from soko.core.entries import b64_of
from soko.core.manifest import Entry, Manifest, ManifestRef
from soko.core.records import VersionRecord
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


def test_requests_that_come_together_parse_the_manifest_once() -> None:
    store = CountingStore()
    state = ServerState(
        store=cast(Store, store), config=ServerConfig(db_url="sqlite://", store_url="memory://")
    )
    record = cast(
        VersionRecord,
        SimpleNamespace(manifest_blob=KEY, qualified_name="e/p/data:v0", algorithm="md5"),
    )
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
    assert found[0][Digest(Algorithm.MD5, hashlib.md5(b"7").digest())] == 7  # type: ignore[index]
