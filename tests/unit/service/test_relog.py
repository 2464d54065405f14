"""What a server answers to a re-log without reading the manifest's entries
(:mod:`soko.service.relog`): whether a content digest needs no blob, and the twin a commit
of an already committed manifest blob goes to."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import pytest

import soko
from soko.errors import CorruptBlobError, TypeConflictError
from soko.service import relog
from soko.service.store import Store
from soko.storage.base import blob_key

pytestmark = pytest.mark.usefixtures("soko_env")


def log(name: str, files: dict[str, str], folder: str, **kwargs: Any) -> soko.Artifact:
    for relative, content in files.items():
        (Path(folder) / relative).parent.mkdir(parents=True, exist_ok=True)
        (Path(folder) / relative).write_text(content)
    with soko.init() as run:
        artifact = soko.Artifact(name, "dataset")
        artifact.add_dir(folder)
        run.log_artifact(artifact, **kwargs).wait()
    return artifact


def test_committed_content_needs_no_blob_until_something_is_set_aside(soko_env: Any) -> None:
    data = log("data", {"a.txt": "alpha"}, "data")
    other = log("other", {"b.txt": "beta"}, "other")
    store = Store.open_local(soko_env.store)
    entity, project = data.entity, data.project
    assert relog.nothing_to_store(store, entity, project, "data", data.digest)
    assert not relog.nothing_to_store(store, entity, project, "data", other.digest)
    assert not relog.nothing_to_store(store, entity, project, "missing", data.digest)

    # A damaged blob of any version set aside: the server cannot see the client's blobs,
    # so the client asks which are missing, and its log stores that blob again.
    entry = other.manifest.get("b.txt")
    assert entry is not None
    blob = soko_env.store / "store" / blob_key(entry.blob_digest())
    blob.chmod(blob.stat().st_mode | stat.S_IWUSR)
    blob.write_text("rotten")
    with pytest.raises(CorruptBlobError):
        soko.Api().artifact("other:v0").download(root="refused")
    assert not relog.nothing_to_store(store, entity, project, "data", data.digest)


def test_a_commit_of_a_committed_manifest_blob_goes_to_its_twin(soko_env: Any) -> None:
    first = log("data", {"a.txt": "alpha"}, "first")
    log("data", {"a.txt": "other"}, "second")
    store = Store.open_local(soko_env.store)
    record = soko.Api().artifact("data:v0")
    manifest_blob = store_key(store, record.id)
    common = {
        "entity": first.entity,
        "project": first.project,
        "name": "data",
        "algorithm": record.manifest.algorithm.value,
        "tags": ["again"],
        "run_id": None,
    }

    twin = relog.commit_to_twin(
        store, type_name="dataset", manifest_blob=manifest_blob, aliases=["best"], **common
    )

    assert twin is not None and twin.id == record.id
    api = soko.Api()
    assert api.artifact("data:best").version == "v0"
    assert api.artifact("data:latest").version == "v1"  # an older twin does not take it
    assert api.artifact("data:v0").tags == ["again"]
    other = store_key(store, api.artifact("data:v1").id)
    assert other != manifest_blob
    unknown = "xxh128:" + "0" * 32
    assert (
        relog.commit_to_twin(
            store, type_name="dataset", manifest_blob=unknown, aliases=[], **common
        )
        is None
    )
    with pytest.raises(TypeConflictError):
        relog.commit_to_twin(
            store, type_name="model", manifest_blob=manifest_blob, aliases=[], **common
        )


def store_key(store: Store, version_id: str) -> str:
    from soko.service import versions

    key = versions.get_version(store, version_id).manifest_blob
    assert key is not None
    return key
