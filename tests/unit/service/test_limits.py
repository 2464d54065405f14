"""The embedded store enforces the limits the server does: the service calls the validators
of ``soko.core.names``, so SQLite refuses what PostgreSQL would, and nothing overflows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import soko
from soko.core.digests import Algorithm, Digest
from soko.core.manifest import ALG_EXTRA_KEY, Entry, Manifest
from soko.core.names import PENDING_PATH_MAX_LENGTH, SIZE_MAX, TTL_MAX_SECONDS
from soko.core.requests import CommitRequest
from soko.errors import NotFoundError, ValidationError
from soko.service import distributed, links, runs, versions
from soko.service.commit import commit_version
from soko.service.store import Store

NUL = "\x00"


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store.open_local(tmp_path / "store")


def _entry(store: Store, path: str, content: bytes, size: int | None = None) -> Entry:
    digest = Digest.of_bytes(content, Algorithm.XXH128)
    store.blobs.put_bytes(digest, content)
    extra = {ALG_EXTRA_KEY: Algorithm.XXH128.value}
    return Entry(
        path=path, digest=digest.b64, size=len(content) if size is None else size, extra=extra
    )


def _request(store: Store, **fields: Any) -> CommitRequest:
    entries = fields.pop("entries", None) or [_entry(store, "a.txt", b"a")]
    names = {"entity": "e", "project": "p", "name": "n", "type": "dataset"}
    manifest = Manifest.of(entries, Algorithm.XXH128)
    return CommitRequest(**{**names, **fields}, manifest=manifest)


@pytest.mark.parametrize(
    "fields",
    [
        {"name": "n" * 257},
        {"job_type": "j" * 129},
        {"group": "g" * 257},
        {"name": f"n{NUL}"},
        {"run_id": f"r{NUL}"},
        {"run_id": "a/b"},
        {"config": {"k": f"v{NUL}"}},
        {"entity": "tab\there"},
    ],
)
def test_bad_runs_are_refused_and_not_stored(store: Store, fields: dict[str, Any]) -> None:
    run = {"run_id": "r1", "entity": "e", "project": "p", **fields}
    with pytest.raises(ValidationError):
        runs.start_run(store, **run)
    assert runs.list_runs(store, "e", "p") == []


@pytest.mark.parametrize(
    "fields",
    [
        {"ttl_seconds": -5},
        {"ttl_seconds": 10**30},
        {"ttl_seconds": TTL_MAX_SECONDS + 1},
        {"description": f"d{NUL}"},
        {"metadata": {"k": NUL}},
        {"aliases": [f"a{NUL}"]},
        {"tags": ["t" * 257]},
        {"aliases": [f"a{i}" for i in range(101)]},
        {"tags": [f"t{i}" for i in range(101)]},
        {"run_id": f"r{NUL}"},
        {"entity": f"e{NUL}"},
    ],
)
def test_bad_commits_are_refused_and_not_stored(store: Store, fields: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        commit_version(store, _request(store, **fields))
    with pytest.raises(NotFoundError):
        versions.list_versions(store, "e", "p", "n")


def test_bad_version_changes_are_refused(store: Store) -> None:
    version = commit_version(store, _request(store))
    for change in (
        {"ttl_seconds": 10**30},
        {"ttl_seconds": -5},
        {"description": f"d{NUL}"},
        {"metadata": {f"k{NUL}": 1}},
        {"aliases_to_set": [f"a{i}" for i in range(101)]},
        {"tags_to_set": [f"t{i}" for i in range(101)]},
    ):
        with pytest.raises(ValidationError):
            versions.update_version(store, version.id, **change)
    assert versions.get_version(store, version.id) == version


def test_a_version_number_beyond_the_database_s_range_is_not_found(store: Store) -> None:
    commit_version(store, _request(store))
    with pytest.raises(NotFoundError, match="does not exist"):
        versions.resolve(store, "e", "p", "n", "v99999999999999999999")
    assert versions.resolve(store, "e", "p", "n", "v0").version_index == 0


def test_a_version_larger_than_a_bigint_is_refused(store: Store) -> None:
    big = [_entry(store, f"{i}.bin", bytes([i]), size=SIZE_MAX // 2 + 1) for i in range(2)]
    with pytest.raises(ValidationError, match="bytes"):
        commit_version(store, _request(store, entries=big))


def test_a_pending_path_wider_than_its_column_is_refused(store: Store) -> None:
    long_path = "d/" + "x" * PENDING_PATH_MAX_LENGTH
    request = _request(store, entries=[_entry(store, long_path, b"x")], distributed_id="job")
    with pytest.raises(ValidationError, match=str(PENDING_PATH_MAX_LENGTH)):
        distributed.upsert(store, request)
    with pytest.raises(ValidationError, match="distributed id"):
        distributed.upsert(store, _request(store, distributed_id=f"job{NUL}"))


@pytest.mark.usefixtures("soko_env")
def test_the_sdk_refuses_what_the_store_would() -> None:
    with pytest.raises(ValidationError, match="run name"):
        soko.init(project="p", name="n" * 257)
    with pytest.raises(ValidationError, match="run id"):
        soko.init(project="p", id="a/b")
    with pytest.raises(ValidationError, match="description"):
        soko.Artifact("n", "dataset", description=f"d{NUL}")
    artifact = soko.Artifact("n", "dataset")
    with pytest.raises(ValidationError, match="at most"):
        artifact.ttl = 10**30
    with pytest.raises(ValidationError, match="At most 100 aliases"):
        artifact.aliases = [f"a{i}" for i in range(101)]
    with pytest.raises(ValidationError, match="At most 100 tags"):
        artifact.tags = [f"t{i}" for i in range(101)]
    assert soko.run is None


def _nested(depth: int) -> dict[str, Any]:
    """An object nesting arrays: *depth* levels in all."""
    value: list[Any] = []
    for _ in range(depth - 2):
        value = [value]
    return {"a": value}


@pytest.mark.usefixtures("soko_env")
@pytest.mark.parametrize("depth", [65, 5000])
def test_deeply_nested_config_and_metadata_are_refused(depth: int) -> None:
    # Walked recursively, such input exhausted the stack (RecursionError, not a soko error).
    deep = _nested(depth)
    with pytest.raises(ValidationError, match="64 levels"):
        soko.init(project="p", config=deep)
    assert soko.run is None
    with pytest.raises(ValidationError, match="64 levels"):
        soko.Artifact("n", "dataset", metadata=deep)
    artifact = soko.Artifact("n", "dataset")
    with pytest.raises(ValidationError, match="64 levels"):
        artifact.metadata = deep
    with soko.init(project="p", config=_nested(64)) as run:
        assert run.config["a"] == _nested(64)["a"]


def test_a_registry_link_takes_at_most_100_aliases(store: Store) -> None:
    version = commit_version(store, _request(store))
    with pytest.raises(ValidationError, match="At most 100 aliases"):
        links.link_version(
            store,
            version.id,
            entity="e",
            project="p",
            registry="reg",
            aliases_to_add=[f"a{i}" for i in range(101)],
        )
    with pytest.raises(NotFoundError):
        versions.list_versions(store, "e", "p", "reg")
