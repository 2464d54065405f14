"""The store's manifests read back: parsed from their text, kept in process within a bound
of entries (a manifest larger than the bound alone is parsed each time it is read)."""

from __future__ import annotations

from pathlib import Path

import pytest

from soko.core.digests import Algorithm, Digest
from soko.core.manifest import MANIFEST_ALGORITHM, Entry, Manifest, ManifestRef
from soko.errors import ValidationError
from soko.service import store as store_module
from soko.service.store import Store


def manifest_of(count: int, tag: str) -> Manifest:
    entries = []
    for i in range(count):
        digest = Digest.of_bytes(f"{tag}-{i}".encode(), Algorithm.XXH128)
        entries.append(
            Entry(path=f"{tag}/{i:03d}", digest=digest.b64, size=i, extra={"alg": "xxh128"})
        )
    return Manifest.of(entries, Algorithm.XXH128)


def test_a_manifest_read_back_from_its_text_has_the_same_entries(tmp_path: Path) -> None:
    written = manifest_of(20, "a")
    key = Store.open_local(tmp_path).put_manifest(written)
    # Another process: nothing kept, the blob is read and parsed.
    read = Store.open_local(tmp_path).load_manifest(key, Algorithm.XXH128)
    assert read is not written
    assert dict(read.entries) == dict(written.entries)
    assert read.digest() == written.digest()


def test_a_manifest_blob_that_is_not_utf8_is_refused_as_json(tmp_path: Path) -> None:
    store = Store.open_local(tmp_path)
    raw = b'{"version": 1, "contents": {"\xff": {}}}'
    digest = Digest(MANIFEST_ALGORITHM, MANIFEST_ALGORITHM.digest_of(raw))
    store.blobs.put_bytes(digest, raw)
    with pytest.raises(ValidationError, match="not valid JSON"):
        store.load_manifest(ManifestRef(digest), Algorithm.XXH128)


def test_manifests_are_kept_within_a_bound_of_entries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_module, "CACHED_ENTRIES", 10)
    store = Store.open_local(tmp_path)
    small = [manifest_of(4, tag) for tag in "abc"]
    keys = [store.put_manifest(m) for m in small]
    large = manifest_of(11, "z")
    large_key = store.put_manifest(large)

    def kept(key: str) -> bool:
        first = store.load_manifest(key, Algorithm.XXH128)
        return store.load_manifest(key, Algorithm.XXH128) is first

    # Over the bound alone: parsed again at every read, and nothing else dropped for it.
    assert store.load_manifest(large_key, Algorithm.XXH128) is not large
    assert not kept(large_key)
    # 4 + 4 + 4 entries pass 10: the oldest was dropped when the third was put.
    assert store.load_manifest(keys[2], Algorithm.XXH128) is small[2]
    assert store.load_manifest(keys[1], Algorithm.XXH128) is small[1]
    assert store.load_manifest(keys[0], Algorithm.XXH128) is not small[0]
    # Reading the first again keeps it, and drops the least recently read (the third).
    assert kept(keys[0])
    assert store.load_manifest(keys[1], Algorithm.XXH128) is small[1]
    assert store.load_manifest(keys[2], Algorithm.XXH128) is not small[2]
