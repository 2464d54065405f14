"""Pages of a version's entries through its manifest's index, against the manifest read
whole: every prefix, cursor and page size gives the same entries in the same order, across
slices; a slice whose stored bytes changed is refused and its index dropped."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from soko.core import manifest_index
from soko.core.digests import Digest
from soko.core.manifest import Entry, Manifest, ManifestRef
from soko.core.requests import CommitRequest
from soko.errors import CorruptBlobError
from soko.metadata.schema import manifest_indexes, versions
from soko.service import pages
from soko.service import store as store_module
from soko.service.commit import commit_version
from soko.service.gc import collect_garbage
from soko.service.store import Store
from soko.service.versions import delete_version

PATHS = sorted(
    [f"a/{i:03d}" for i in range(40)]
    + [f"a-b/{i}" for i in range(5)]
    + [f"ab{i}" for i in range(5)]
    + ["a/x/y", "ü/é", "z"]
)


def reference(path: str) -> Entry:
    return Entry(path=path, digest=f"s3://b/{path}", ref=f"s3://b/{path}", size=len(path))


@pytest.fixture
def stored(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Store, str]:
    monkeypatch.setattr(manifest_index, "SLICE_ENTRIES", 4)
    store = Store.open_local(tmp_path)
    request = CommitRequest(
        entity="e",
        project="p",
        name="n",
        type="dataset",
        manifest=Manifest.of(reference(p) for p in PATHS),
    )
    record = commit_version(store, request)
    assert record.manifest_blob is not None
    return store, record.manifest_blob


@pytest.mark.parametrize("prefix", ["", "a", "a/", "a-", "ab", "ü", "z", "zz", "0"])
@pytest.mark.parametrize("limit", [1, 3, 100])
def test_pages_give_the_entries_under_a_prefix_in_order(
    stored: tuple[Store, str], prefix: str, limit: int
) -> None:
    store, key = stored
    found: list[str] = []
    after: str | None = None
    while True:
        page = pages.entries_page(store, key, prefix=prefix, after=after, limit=limit)
        assert len(page.entries) <= limit and page.total == len(PATHS)
        found += [e.path for e in page.entries]
        if page.next_after is None:
            break
        after = page.next_after
    assert found == [p for p in PATHS if p.startswith(prefix)]
    assert [e.path for e in pages.iter_entries(store, key, prefix=prefix)] == found


def test_one_entry_and_the_index_is_stored_once(stored: tuple[Store, str]) -> None:
    store, key = stored
    entry = pages.entry_at(store, key, "ü/é")
    assert entry is not None and entry.ref == "s3://b/ü/é"
    assert pages.entry_at(store, key, "a/0") is None
    assert pages.entry_at(store, key, "") is None
    with store.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(manifest_indexes)).scalar() == 1


def test_a_slice_that_does_not_match_its_index_is_refused(stored: tuple[Store, str]) -> None:
    store, key = stored
    index = pages.index_of(store, key)
    # An index that is not the blob's (the blob itself is sound): refused, then rebuilt.
    wrong = manifest_index.Slice(**{**_fields(index.slices[2]), "digest": "0" * 32})
    bad = manifest_index.ManifestIndex(
        index.count,
        index.size,
        index.references,
        index.reference_slices,
        (*index.slices[:2], wrong, *index.slices[3:]),
        index.folders,
    )
    store._indexes[key] = bad
    with pytest.raises(CorruptBlobError):
        list(pages.iter_entries(store, key))
    assert [e.path for e in pages.iter_entries(store, key)] == PATHS


def _fields(part: manifest_index.Slice) -> dict[str, object]:
    return {name: getattr(part, name) for name in part.__slots__}


def test_gc_drops_the_index_of_a_manifest_it_deletes(stored: tuple[Store, str]) -> None:
    store, key = stored
    pages.index_of(store, key)
    with store.engine.connect() as conn:
        version_id = conn.execute(select(versions.c.id)).scalar_one()
    delete_version(store, version_id, delete_aliases=True)
    collect_garbage(store, grace_seconds=0)
    with store.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(manifest_indexes)).scalar() == 0


def test_a_large_manifest_is_stored_from_its_slices_with_the_index_of_its_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(manifest_index, "SLICE_ENTRIES", 4)
    monkeypatch.setattr(store_module, "INDEX_AT_COMMIT", 5)
    stored = [Entry(f"s/{i}", Digest.of_bytes(b"%d" % i).b64, i) for i in range(9)]
    manifest = Manifest.of([*stored, *(reference(p) for p in PATHS)])
    store = Store.open_local(tmp_path)
    key = store.put_manifest(manifest)
    ref, raw = ManifestRef.encode(manifest)
    assert key == ref.key and store.manifest_bytes(ref) == raw
    # Stored again (the blob exists): the same key, the stored copy compared and kept.
    assert store.put_manifest(manifest) == key
    # The index stored with it is the index of the bytes, read by another process.
    again = Store(store.engine, store.blobs)
    assert pages.index_of(again, key) == manifest_index.build(raw)
    assert [e.path for e in pages.iter_entries(again, key)] == sorted(e.path for e in manifest)
