"""The rows of ``project_blobs`` (:mod:`soko.service.possession`) on SQLite and PostgreSQL:
uploads into one project race without deadlocking, and the size the server measured of
uploaded bytes is the one a project's row keeps."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from server_fixtures import fresh_pg_database

from soko.core.digests import Algorithm, Digest
from soko.metadata.engine import sqlite_url
from soko.service import possession
from soko.service.catalog import ensure_project
from soko.service.store import Store
from soko.storage.memory import MemoryBlobStore

pytestmark = pytest.mark.integration


@pytest.fixture
def pg_store() -> Iterator[Store]:
    with fresh_pg_database() as url:
        opened = Store.open(url, MemoryBlobStore())
        yield opened
        opened.engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "postgresql":
        yield request.getfixturevalue("pg_store")
        return
    opened = Store.open(sqlite_url(tmp_path / "meta.db"), MemoryBlobStore())
    yield opened
    opened.engine.dispose()


def digests(count: int) -> list[Digest]:
    return [Digest.of_bytes(i.to_bytes(4, "big"), Algorithm.XXH128) for i in range(count)]


def test_uploads_of_overlapping_blobs_in_opposite_orders_both_record(pg_store: Store) -> None:
    # Two batches naming the same blobs, listed in opposite orders, recorded at once: each
    # transaction waited for a row the other had inserted (PostgreSQL detected a deadlock,
    # so one upload failed with a 500) unless the rows go in in one order.
    store = pg_store
    blobs = digests(20_000)
    ready = threading.Barrier(2)
    failures: list[BaseException] = []

    def upload(order: list[Digest]) -> None:
        ready.wait()
        try:
            possession.record_uploads(store, entity="e", project="p", blobs=[(d, 1) for d in order])
        except BaseException as exc:
            failures.append(exc)

    with store.engine.begin() as conn:
        ensure_project(conn, "e", "p")
    threads = [threading.Thread(target=upload, args=(o,)) for o in (blobs, blobs[::-1])]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    with store.engine.connect() as conn:
        project_id = ensure_project(conn, "e", "p")
        assert len(possession.possessed(conn, project_id, blobs)) == len(blobs)


def test_an_upload_corrects_a_size_learnt_from_a_manifest(store: Store) -> None:
    right, wrong = digests(2)
    with store.engine.begin() as conn:
        project_id = ensure_project(conn, "e", "p")
        # Borrowed from a source version whose manifest lied about the sizes.
        possession.record(conn, project_id, {right: 7, wrong: 7})
        possession.record(conn, project_id, {right: 99})  # borrowed again: kept as it was
    possession.record_uploads(store, entity="e", project="p", blobs=[(wrong, 4)])
    with store.engine.connect() as conn:
        assert possession.possessed(conn, project_id, [right, wrong]) == {right: 7, wrong: 4}


def test_rows_of_more_blobs_than_one_insert_writes_are_all_recorded(store: Store) -> None:
    blobs = {d: i for i, d in enumerate(digests(1_201))}
    with store.engine.begin() as conn:
        project_id = ensure_project(conn, "e", "p")
        possession.record(conn, project_id, {d: 1 for d in blobs})
        possession.record(conn, project_id, blobs, measured=True)  # every size corrected
    with store.engine.connect() as conn:
        assert possession.possessed(conn, project_id, list(blobs)) == blobs
