"""Incremental commits on a real embedded store: the added entries over the latest version,
the base resolved where the commit happens, and a version that lands between the read of
the base and the commit made the base of a second attempt (nothing of it is lost)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from soko.core.digests import Algorithm, Digest
from soko.core.manifest import ALG_EXTRA_KEY, Entry, Manifest
from soko.core.requests import CommitRequest
from soko.errors import ConflictError
from soko.service import distributed, incremental
from soko.service import versions as version_service
from soko.service.commit import commit_version
from soko.service.store import Store

ENTITY = "local"
PROJECT = "proj"
NAME = "data"


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store.open_local(tmp_path / "store")


def stored(store: Store, path: str, content: bytes) -> Entry:
    digest = Digest.of_bytes(content, Algorithm.XXH128)
    store.blobs.put_bytes(digest, content)
    return Entry(path, digest.b64, len(content), extra={ALG_EXTRA_KEY: "XXH128"})


def request(entries: list[Entry], **fields: Any) -> CommitRequest:
    return CommitRequest(
        entity=ENTITY,
        project=PROJECT,
        name=NAME,
        type="dataset",
        manifest=Manifest.of(entries, Algorithm.XXH128),
        **fields,
    )


def contents(store: Store, selector: str) -> dict[str, str]:
    record = version_service.resolve(store, ENTITY, PROJECT, NAME, selector)
    assert record.manifest_blob is not None
    manifest = store.load_manifest(record.manifest_blob, Algorithm.parse(record.algorithm))
    return {entry.path: entry.digest for entry in manifest}


def race_once(store: Store, monkeypatch: pytest.MonkeyPatch, commit: Callable[[], Any]) -> None:
    """Run *commit* once, between the next commit's read of its base and its transaction
    (when it stores its manifest, outside any transaction)."""
    put_manifest = store.put_manifest
    pending = [commit]

    def racing(manifest: Manifest) -> str:
        key = put_manifest(manifest)
        if pending:
            pending.pop()()
        return key

    monkeypatch.setattr(store, "put_manifest", racing)


def test_overlay_lets_the_added_entry_win() -> None:
    old = Entry("a.txt", "old", 1)
    base = incremental.Base("v", Manifest.of([old, Entry("b.txt", "b", 1)]))
    added = Manifest.of([Entry("a.txt", "new", 2), Entry("c.txt", "c", 3)])
    merged = incremental.overlay(base, added)
    assert {e.path: e.digest for e in merged} == {"a.txt": "new", "b.txt": "b", "c.txt": "c"}
    assert incremental.overlay(None, added) is added


def test_a_version_committed_meanwhile_becomes_the_base(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    commit_version(store, request([stored(store, "a.txt", b"a")]))
    # Another writer commits after this commit read its base, before it commits.
    race_once(
        store,
        monkeypatch,
        lambda: commit_version(
            store, request([stored(store, "other.txt", b"o")], incremental=True)
        ),
    )
    record = commit_version(store, request([stored(store, "mine.txt", b"m")], incremental=True))

    assert record.version == "v2"
    assert set(contents(store, "v2")) == {"a.txt", "other.txt", "mine.txt"}
    assert set(contents(store, "v1")) == {"a.txt", "other.txt"}


def test_a_base_that_never_settles_is_a_conflict(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    commit_version(store, request([stored(store, "a.txt", b"a")]))
    counter = iter(range(1000))
    put_manifest = store.put_manifest
    racing = False

    def always_racing(manifest: Manifest) -> str:
        nonlocal racing
        key = put_manifest(manifest)
        if not racing and "mine.txt" in manifest.entries:
            racing = True
            commit_version(store, request([stored(store, f"r{next(counter)}.txt", b"r")]))
            racing = False
        return key

    monkeypatch.setattr(store, "put_manifest", always_racing)
    with pytest.raises(ConflictError, match="kept being committed"):
        commit_version(store, request([stored(store, "mine.txt", b"m")], incremental=True))
    assert "mine.txt" not in contents(store, "latest")


def test_content_equal_to_the_latest_makes_no_version(store: Store) -> None:
    first = commit_version(store, request([stored(store, "a.txt", b"a")]))
    again = commit_version(store, request([stored(store, "a.txt", b"a")], incremental=True))
    assert again.id == first.id
    assert [r.version for r in version_service.list_versions(store, ENTITY, PROJECT, NAME)] == [
        "v0"
    ]


def test_a_finish_builds_on_a_version_committed_after_the_upserts(store: Store) -> None:
    commit_version(store, request([stored(store, "a.txt", b"a")]))
    distributed.upsert(
        store,
        request([stored(store, "w.txt", b"w")], distributed_id="job", incremental=True),
    )
    # Committed after the upsert and before the finish: the finish builds on it.
    commit_version(store, request([stored(store, "late.txt", b"l")], incremental=True))
    record = distributed.finish(store, request([], distributed_id="job"))
    assert record.version == "v2"
    assert set(contents(store, "v2")) == {"a.txt", "late.txt", "w.txt"}


def test_a_finish_retries_when_the_base_moves_during_it(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    commit_version(store, request([stored(store, "a.txt", b"a")]))
    distributed.upsert(
        store, request([stored(store, "w.txt", b"w")], distributed_id="job", incremental=True)
    )
    race_once(
        store,
        monkeypatch,
        lambda: commit_version(store, request([stored(store, "o.txt", b"o")], incremental=True)),
    )
    record = distributed.finish(store, request([], distributed_id="job"))
    assert set(contents(store, record.version)) == {"a.txt", "o.txt", "w.txt"}
