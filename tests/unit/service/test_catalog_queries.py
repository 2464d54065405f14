"""Reading versions costs a bounded number of queries, whatever the number of versions:
their aliases and tags are read in batches, not once per version."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from soko.core.digests import Algorithm, Digest
from soko.core.manifest import ALG_EXTRA_KEY, Entry, Manifest
from soko.core.requests import CommitRequest
from soko.service import runs
from soko.service import versions as version_service
from soko.service.commit import commit_version
from soko.service.store import Store

ENTITY = "local"
PROJECT = "proj"
NAME = "listed"
VERSIONS = 50


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store.open_local(tmp_path / "store")


@contextmanager
def counted(store: Store) -> Iterator[list[str]]:
    """The SQL statements the store's engine runs inside the block."""
    statements: list[str] = []

    def note(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    event.listen(store.engine, "before_cursor_execute", note)
    try:
        yield statements
    finally:
        event.remove(store.engine, "before_cursor_execute", note)


def commit(store: Store, index: int, *, run_id: str | None = None) -> str:
    content = f"content {index}".encode()
    digest = Digest.of_bytes(content, Algorithm.XXH128)
    store.blobs.put_bytes(digest, content)
    entry = Entry(
        path="f.txt",
        digest=digest.b64,
        size=len(content),
        extra={ALG_EXTRA_KEY: Algorithm.XXH128.value},
    )
    request = CommitRequest(
        entity=ENTITY,
        project=PROJECT,
        name=NAME,
        type="dataset",
        manifest=Manifest.of([entry], Algorithm.XXH128),
        aliases=[f"a{index}", f"b{index}"],
        tags=[f"t{index}", f"u{index}"],
        run_id=run_id,
    )
    return commit_version(store, request).id


def test_listing_versions_costs_the_same_queries_for_one_or_fifty(store: Store) -> None:
    commit(store, 0)
    with counted(store) as one:
        assert len(version_service.list_versions(store, ENTITY, PROJECT, NAME)) == 1
    for index in range(1, VERSIONS):
        commit(store, index)
    with counted(store) as many:
        listed = version_service.list_versions(store, ENTITY, PROJECT, NAME)
    assert len(listed) == VERSIONS
    assert len(many) == len(one) <= 8
    # Each version still gets its own aliases (latest on the last) and tags.
    assert listed[7].aliases == ["a7", "b7"]
    assert listed[-1].aliases == ["latest", f"a{VERSIONS - 1}", f"b{VERSIONS - 1}"]
    assert listed[7].tags == ["t7", "u7"]
    assert [v.version_index for v in listed] == list(range(VERSIONS))


def test_versions_of_a_run_cost_the_same_queries_for_one_or_fifty(store: Store) -> None:
    runs.start_run(store, run_id="run1", entity=ENTITY, project=PROJECT)
    first = commit(store, 0, run_id="run1")
    with counted(store) as one:
        assert [v.id for v in runs.versions_of_run(store, "run1", "logged")] == [first]
    ids = [first] + [commit(store, index, run_id="run1") for index in range(1, VERSIONS)]
    with counted(store) as many:
        found = runs.versions_of_run(store, "run1", "logged")
    assert [v.id for v in found] == ids
    assert len(many) == len(one) <= 10
    assert found[3].tags == ["t3", "u3"]
