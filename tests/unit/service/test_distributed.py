"""The distributed-version service on a real embedded store (SQLite + local blob folder):
upsert merges, conflicts, finish, the next version, abandon, and what readers can see."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from soko.core.digests import Algorithm, Digest
from soko.core.manifest import ALG_EXTRA_KEY, Entry, Manifest
from soko.core.records import COMMITTED, PENDING
from soko.core.requests import CommitRequest
from soko.errors import ConflictError, NotFoundError, TypeConflictError, ValidationError
from soko.metadata.schema import lineage, pending_entries, tags, versions
from soko.service import distributed, runs
from soko.service import versions as version_service
from soko.service.commit import commit_version
from soko.service.store import Store

ENTITY = "local"
PROJECT = "proj"
NAME = "shared"


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store.open_local(tmp_path / "store")


def stored_entry(
    store: Store, path: str, content: bytes, algorithm: Algorithm = Algorithm.XXH128
) -> Entry:
    """An entry whose blob is in *store*."""
    digest = Digest.of_bytes(content, algorithm)
    store.blobs.put_bytes(digest, content)
    extra = {ALG_EXTRA_KEY: algorithm.value} if algorithm is Algorithm.XXH128 else {}
    return Entry(path=path, digest=digest.b64, size=len(content), extra=extra)


def request(
    entries: list[Entry],
    *,
    run_id: str | None = None,
    algorithm: Algorithm = Algorithm.XXH128,
    type_name: str = "dataset",
    distributed_id: str | None = "job",
    **fields: Any,
) -> CommitRequest:
    return CommitRequest(
        entity=ENTITY,
        project=PROJECT,
        name=NAME,
        type=type_name,
        manifest=Manifest.of(entries, algorithm),
        run_id=run_id,
        distributed_id=distributed_id,
        **fields,
    )


def start(store: Store, run_id: str) -> str:
    runs.start_run(store, run_id=run_id, entity=ENTITY, project=PROJECT, group="g")
    return run_id


def pending_paths(store: Store, version_id: str) -> dict[str, str]:
    with store.engine.connect() as conn:
        rows = conn.execute(
            select(pending_entries.c.path, pending_entries.c.writer).where(
                pending_entries.c.version_id == version_id
            )
        )
        return {r.path: r.writer for r in rows}


def test_upserts_merge_into_one_pending_version_invisible_to_readers(store: Store) -> None:
    w1, w2 = start(store, "writer1"), start(store, "writer2")
    first = distributed.upsert(store, request([stored_entry(store, "a.txt", b"a")], run_id=w1))
    second = distributed.upsert(
        store,
        request([stored_entry(store, "b.txt", b"bb")], run_id=w2),
    )

    assert first.id == second.id
    assert second.state == PENDING and second.version_index is None
    assert second.distributed_id == "job"
    assert (second.file_count, second.size) == (2, 3)
    assert pending_paths(store, second.id) == {"a.txt": w1, "b.txt": w2}
    with pytest.raises(NotFoundError):
        version_service.resolve(store, ENTITY, PROJECT, NAME, "latest")
    with pytest.raises(NotFoundError):
        version_service.resolve(store, ENTITY, PROJECT, NAME, "v0")
    assert version_service.list_versions(store, ENTITY, PROJECT, NAME) == []
    assert version_service.get_collection(store, ENTITY, PROJECT, NAME).version_count == 0
    listed = distributed.list_pending(store, entity=ENTITY, project=PROJECT)
    assert [(r.id, r.file_count) for r in listed] == [(first.id, 2)]
    assert distributed.list_pending(store, entity=ENTITY, project=PROJECT, name="other") == []


def test_same_path_same_content_from_two_writers_is_one_entry(store: Store) -> None:
    entry = stored_entry(store, "common/config.json", b"{}")
    distributed.upsert(store, request([entry]))
    again = distributed.upsert(store, request([entry, stored_entry(store, "x", b"x")]))
    assert again.file_count == 2
    assert set(pending_paths(store, again.id)) == {"common/config.json", "x"}


def test_conflicting_upsert_is_refused_whole_and_keeps_what_was_upserted(store: Store) -> None:
    w1, w2 = start(store, "writer1"), start(store, "writer2")
    one = stored_entry(store, "t.json", b"one")
    kept = distributed.upsert(store, request([one, stored_entry(store, "a", b"a")], run_id=w1))
    late = request(
        [stored_entry(store, "t.json", b"two"), stored_entry(store, "b", b"b")],
        run_id=w2,
        metadata={"late": True},
        aliases=["late"],
    )
    with pytest.raises(ConflictError, match=r"t\.json"):
        distributed.upsert(store, late)

    (pending,) = distributed.list_pending(store, entity=ENTITY, project=PROJECT)
    assert pending.id == kept.id
    assert pending_paths(store, pending.id) == {"t.json": w1, "a": w1}
    assert (pending.file_count, pending.metadata, pending.aliases) == (2, {}, [])
    with store.engine.connect() as conn:
        writers = set(conn.execute(select(lineage.c.run_id)).scalars())
    assert writers == {w1}

    committed = distributed.finish(store, request([]))
    manifest = store.load_manifest(str(committed.manifest_blob), Algorithm.XXH128)
    assert manifest.get("t.json") == one
    assert sorted(e.path for e in manifest) == ["a", "t.json"]


def test_finish_commits_every_entry_with_the_commit_protocol(store: Store) -> None:
    w1, w2, fin = start(store, "w1"), start(store, "w2"), start(store, "finisher")
    e1 = stored_entry(store, "parts/1.json", b"1")
    e2 = stored_entry(store, "parts/2.json", b"22")
    own = stored_entry(store, "table.json", b"index")
    distributed.upsert(
        store,
        request([e1], run_id=w1, metadata={"a": 1, "shared": "w1"}, aliases=["a1"], tags=["t1"]),
    )
    pending = distributed.upsert(
        store,
        request([e2], run_id=w2, metadata={"b": 2, "shared": "w2"}, description="from w2"),
    )
    record = distributed.finish(
        store,
        request([own], run_id=fin, metadata={"c": 3}, aliases=["final"], tags=["t2"]),
    )

    assert record.id == pending.id
    assert (record.state, record.version, record.distributed_id) == (COMMITTED, "v0", "job")
    expected = Manifest.of([e1, e2, own], Algorithm.XXH128)
    assert record.digest == expected.digest()
    assert (record.file_count, record.size) == (3, 8)
    stored = store.load_manifest(str(record.manifest_blob), Algorithm.XXH128)
    assert stored.to_bytes() == expected.to_bytes()
    assert record.metadata == {"a": 1, "shared": "w2", "b": 2, "c": 3}
    assert record.description == "from w2"
    assert record.aliases == ["latest", "a1", "final"]
    assert record.tags == ["t1", "t2"]
    assert version_service.resolve(store, ENTITY, PROJECT, NAME, "latest").id == record.id
    logged = {r.id for r in runs.runs_of_version(store, record.id, "logged")}
    assert logged == {w1, w2, fin}
    assert pending_paths(store, record.id) == {}
    assert distributed.list_pending(store, entity=ENTITY, project=PROJECT) == []


def test_upsert_after_finish_starts_the_next_version(store: Store) -> None:
    distributed.upsert(store, request([stored_entry(store, "a", b"a")]))
    v0 = distributed.finish(store, request([]))
    late = distributed.upsert(store, request([stored_entry(store, "b", b"b")]))

    assert late.state == PENDING and late.id != v0.id and late.file_count == 1
    assert version_service.resolve(store, ENTITY, PROJECT, NAME, "latest").id == v0.id
    v1 = distributed.finish(store, request([]))
    assert (v1.version, v1.id) == ("v1", late.id)
    manifest = store.load_manifest(str(v1.manifest_blob), Algorithm.XXH128)
    assert [e.path for e in manifest] == ["b"]
    assert version_service.resolve(store, ENTITY, PROJECT, NAME, "latest").id == v1.id


def test_finish_without_upserts_commits_its_own_entries(store: Store) -> None:
    fin = start(store, "finisher")
    own = stored_entry(store, "only.txt", b"only")
    record = distributed.finish(store, request([own], run_id=fin, distributed_id="solo"))
    assert (record.state, record.version, record.file_count) == (COMMITTED, "v0", 1)
    assert record.distributed_id == "solo"
    assert record.aliases == ["latest"]
    assert [r.id for r in runs.runs_of_version(store, record.id, "logged")] == [fin]

    empty = distributed.finish(store, request([], distributed_id="other"))
    assert (empty.version, empty.file_count, empty.size) == ("v1", 0, 0)


def test_finish_conflicting_with_pending_commits_nothing(store: Store) -> None:
    pending = distributed.upsert(store, request([stored_entry(store, "x", b"upserted")]))
    with pytest.raises(ConflictError, match="'x'"):
        distributed.finish(store, request([stored_entry(store, "x", b"finisher")]))
    assert version_service.list_versions(store, ENTITY, PROJECT, NAME) == []
    (still,) = distributed.list_pending(store, entity=ENTITY, project=PROJECT)
    assert (still.id, still.file_count) == (pending.id, 1)


def test_finish_with_content_of_a_committed_version_returns_that_version(
    store: Store,
) -> None:
    w1 = start(store, "w1")
    entry = stored_entry(store, "same", b"same")
    v0 = commit_version(store, request([entry], distributed_id=None))
    pending = distributed.upsert(store, request([entry], run_id=w1))
    record = distributed.finish(store, request([], aliases=["again"]))

    assert record.id == v0.id and record.version == "v0"
    assert "again" in record.aliases
    assert [r.id for r in runs.runs_of_version(store, v0.id, "logged")] == [w1]
    with store.engine.connect() as conn:
        assert conn.execute(select(versions).where(versions.c.id == pending.id)).first() is None
        count = conn.execute(select(func.count()).select_from(pending_entries)).scalar_one()
        assert count == 0
    assert len(version_service.list_versions(store, ENTITY, PROJECT, NAME)) == 1


def test_finish_rebuilds_when_an_upsert_lands_while_it_stores_the_manifest(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    distributed.upsert(store, request([stored_entry(store, "early", b"e")]))
    late_entry = stored_entry(store, "late", b"l")
    put_manifest = store.put_manifest
    calls: list[int] = []

    def put_and_race(manifest: Manifest) -> str:
        calls.append(len(manifest))
        if len(calls) == 1:
            distributed.upsert(store, request([late_entry]))
        return put_manifest(manifest)

    monkeypatch.setattr(store, "put_manifest", put_and_race)
    record = distributed.finish(store, request([]))

    assert calls == [1, 2]
    manifest = store.load_manifest(str(record.manifest_blob), Algorithm.XXH128)
    assert [e.path for e in manifest] == ["early", "late"]
    assert distributed.list_pending(store, entity=ENTITY, project=PROJECT) == []


def test_abandon_drops_the_pending_version_and_a_later_upsert_starts_afresh(
    store: Store,
) -> None:
    w1 = start(store, "w1")
    pending = distributed.upsert(
        store,
        request([stored_entry(store, "a", b"a")], run_id=w1, tags=["t"]),
    )
    dropped = distributed.abandon_pending(
        store, entity=ENTITY, project=PROJECT, name=NAME, distributed_id="job"
    )
    assert (dropped.id, dropped.file_count) == (pending.id, 1)
    assert distributed.list_pending(store, entity=ENTITY, project=PROJECT) == []
    with store.engine.connect() as conn:
        for table in (versions, pending_entries, lineage, tags):
            assert conn.execute(select(func.count()).select_from(table)).scalar_one() == 0
    assert runs.versions_of_run(store, w1, "logged") == []
    with pytest.raises(NotFoundError):
        distributed.abandon_pending(
            store, entity=ENTITY, project=PROJECT, name=NAME, distributed_id="job"
        )

    fresh = distributed.upsert(store, request([stored_entry(store, "b", b"b")]))
    assert fresh.id != pending.id and fresh.file_count == 1


def test_upsert_naming_a_blob_not_stored_changes_nothing(store: Store) -> None:
    ghost = Entry(
        path="ghost",
        digest=Digest.of_bytes(b"never stored", Algorithm.XXH128).b64,
        size=12,
        extra={ALG_EXTRA_KEY: "xxh128"},
    )
    with pytest.raises(NotFoundError, match="not stored"):
        distributed.upsert(store, request([ghost]))
    assert distributed.list_pending(store, entity=ENTITY, project=PROJECT) == []


def test_upserts_must_share_a_digest_algorithm(store: Store) -> None:
    distributed.upsert(store, request([stored_entry(store, "a", b"a")]))
    md5 = stored_entry(store, "b", b"b", Algorithm.MD5)
    with pytest.raises(ConflictError, match="digest"):
        distributed.upsert(store, request([md5], algorithm=Algorithm.MD5))
    (pending,) = distributed.list_pending(store, entity=ENTITY, project=PROJECT)
    assert pending.file_count == 1


@pytest.mark.parametrize("bad", ["", "x" * 257])
def test_bad_distributed_ids_are_refused(store: Store, bad: str) -> None:
    with pytest.raises(ValidationError, match="distributed id"):
        distributed.upsert(store, request([], distributed_id=bad))
    with pytest.raises(ValidationError, match="distributed id"):
        distributed.finish(store, request([], distributed_id=bad))
    assert distributed.list_pending(store, entity=ENTITY, project=PROJECT) == []


def test_upsert_under_another_type_is_refused(store: Store) -> None:
    distributed.upsert(store, request([stored_entry(store, "a", b"a")]))
    with pytest.raises(TypeConflictError):
        distributed.upsert(
            store,
            request([stored_entry(store, "b", b"b")], type_name="model"),
        )
    (pending,) = distributed.list_pending(store, entity=ENTITY, project=PROJECT)
    assert pending.file_count == 1


def test_metadata_merged_past_the_key_limit_refuses_the_upsert(store: Store) -> None:
    first = {f"k{i}": i for i in range(60)}
    second = {f"j{i}": i for i in range(60)}
    distributed.upsert(store, request([stored_entry(store, "a", b"a")], metadata=first))
    with pytest.raises(ValidationError, match="100"):
        distributed.upsert(store, request([stored_entry(store, "b", b"b")], metadata=second))
    (pending,) = distributed.list_pending(store, entity=ENTITY, project=PROJECT)
    assert (pending.file_count, pending.metadata) == (1, first)
