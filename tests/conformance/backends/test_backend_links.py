"""Links into registry collections: members with their own identity, listing, unlinking and
the deletion rules, on every backend."""

from __future__ import annotations

import threading

import pytest
from backend_suite import Backend

import soko
from soko.errors import ValidationError


def _registry_collection() -> str:
    return f"wandb-registry-model/{Backend.unique('coll')}"


def test_a_link_has_its_own_name_version_project_and_aliases(backend: Backend) -> None:
    backend.log("clf", {"w.bin": "weights 0"}, type="model")
    source = backend.log("clf", {"w.bin": "weights 1"}, type="model", aliases=["best"])
    target = _registry_collection()
    collection = target.split("/")[1]

    returned = source.link(target, aliases=["staging", "candidate"])

    linked = soko.Api().artifact(f"{target}:staging")
    for link in (returned, linked):
        assert link.is_link
        assert link.name == f"{collection}:v0"
        assert link.version == "v0"
        assert link.project == "wandb-registry-model"
        assert sorted(link.aliases) == ["candidate", "latest", "staging"]
        assert link.digest == source.digest
        assert link.type == "model"
        assert link.source_name == "clf:v1"
        assert link.source_version == "v1"
        assert link.source_project == backend.project
        assert link.source_artifact.id == source.id
        assert link.id == source.id  # as W&B gives it
    assert not source.is_link
    assert source.source_artifact is source
    assert sorted(soko.Api().artifact("clf:v1").aliases) == ["best", "latest"]
    assert linked.qualified_name.endswith(f"/wandb-registry-model/{collection}:v0")
    assert (linked.collection.name, linked.collection.project) == (
        collection,
        "wandb-registry-model",
    )
    assert linked.source_collection.name == source.collection.name == "clf"


def test_links_are_numbered_within_their_collection(backend: Backend) -> None:
    target = _registry_collection()
    sources = [backend.log("clf", {"w.bin": f"weights {i}"}, type="model") for i in range(3)]
    for source in reversed(sources):
        source.link(target)
    api = soko.Api()
    # Linked in the order v2, v1, v0: each link takes the next index of the collection.
    assert api.artifact(f"{target}:v0").source_version == "v2"
    assert api.artifact(f"{target}:v2").source_version == "v0"
    assert api.artifact(f"{target}:latest").version == "v2"


def test_the_same_version_linked_twice_is_one_link(backend: Backend) -> None:
    source = backend.log("clf", {"w.bin": "weights"}, type="model")
    target = _registry_collection()
    first = source.link(target, aliases=["a"])
    second = source.link(target, aliases=["b"])
    assert first == second
    assert second.version == "v0"
    assert sorted(second.aliases) == ["a", "b", "latest"]
    listed = soko.Api().artifact_collection("model", target).artifacts()
    assert [a.version for a in listed] == ["v0"]


def test_listing_a_registry_collection_lists_its_links(backend: Backend) -> None:
    target = _registry_collection()
    for i in range(2):
        backend.log("clf", {"w.bin": f"weights {i}"}, type="model").link(target)
    api = soko.Api()
    listed = api.artifacts("model", target)
    assert [(a.version, a.source_version, a.is_link) for a in listed] == [
        ("v0", "v0", True),
        ("v1", "v1", True),
    ]
    collection = api.artifact_collection("model", target)
    assert [a.version for a in collection.artifacts()] == ["v0", "v1"]
    assert [a.version for a in collection.versions()] == ["v0", "v1"]
    assert not collection.is_sequence()


def test_a_link_has_its_own_aliases_and_shares_its_sources_tags(backend: Backend) -> None:
    source = backend.log("clf", {"w.bin": "weights"}, type="model", aliases=["best"])
    target = _registry_collection()
    link = source.link(target)
    link.aliases.append("production")
    link.tags = ["approved"]
    link.save()

    api = soko.Api()
    again = api.artifact(f"{target}:production")
    assert sorted(again.aliases) == ["latest", "production"]
    original = api.artifact("clf:v0")
    assert sorted(original.aliases) == ["best", "latest"]
    assert not api.artifact_exists("clf:production")
    # Tags belong to the version, as in W&B: set on the link, they are the source's.
    assert again.tags == original.tags == ["approved"]
    original.tags = ["approved", "reviewed"]
    original.save()
    assert api.artifact(f"{target}:v0").tags == ["approved", "reviewed"]
    assert [a.version for a in api.artifacts("model", "clf", tags=["reviewed"])] == ["v0"]


def test_a_description_set_on_a_link_is_its_sources(backend: Backend) -> None:
    source = backend.log("clf", {"w.bin": "weights"}, type="model")
    link = source.link(_registry_collection())
    link.description = "a fine model"
    link.metadata = {"acc": 0.9}
    link.save()
    api = soko.Api()
    assert api.artifact("clf:v0").description == "a fine model"
    assert api.artifact("clf:v0").metadata == {"acc": 0.9}
    with pytest.raises(ValueError, match="TTL"):
        link.ttl = None


def test_linked_artifacts_lists_the_links_of_a_version(backend: Backend) -> None:
    source = backend.log("clf", {"w.bin": "weights"}, type="model")
    first, second = _registry_collection(), _registry_collection()
    source.link(first)
    source.link(second, aliases=["prod"])
    links = soko.Api().artifact("clf:v0").linked_artifacts
    assert sorted(link.qualified_name.split("/", 1)[1] for link in links) == sorted(
        f"{target}:v0" for target in (first, second)
    )
    assert all(link.is_link for link in links)
    assert links[0].linked_artifacts == []


def test_unlink_removes_the_link_and_moves_latest(backend: Backend) -> None:
    target = _registry_collection()
    older = backend.log("clf", {"w.bin": "weights 0"}, type="model")
    newer = backend.log("clf", {"w.bin": "weights 1"}, type="model")
    older.link(target)
    newer.link(target, aliases=["prod"])
    api = soko.Api()

    api.artifact(f"{target}:prod").unlink()

    assert not api.artifact_exists(f"{target}:prod")
    assert not api.artifact_exists(f"{target}:v1")
    assert api.artifact(f"{target}:latest").version == "v0"
    assert api.artifact("clf:v1").state == "COMMITTED"
    assert newer.linked_artifacts == []
    with pytest.raises(ValueError, match="not a linked artifact"):
        older.unlink()
    # Linking it again makes a new member: indexes are never reused.
    assert newer.link(target).version == "v2"


def test_delete_of_a_link_unlinks_it(backend: Backend) -> None:
    source = backend.log("clf", {"w.bin": "weights"}, type="model")
    target = _registry_collection()
    source.link(target, aliases=["prod"])
    soko.Api().artifact(f"{target}:prod").delete()
    assert not soko.Api().artifact_exists(f"{target}:v0")
    assert soko.Api().artifact("clf:v0").state == "COMMITTED"


def test_a_linked_version_is_deleted_only_when_told(backend: Backend) -> None:
    registry = _registry_collection()
    for i in range(3):
        artifact = backend.log("model", {"w.bin": f"weights {i}"}, type="model")
        artifact.link(registry)
    api = soko.Api()
    assert api.artifact(f"{registry}:latest").source_artifact.id == artifact.id

    with pytest.raises(ValidationError, match="linked"):
        artifact.delete()
    assert api.artifact(f"{registry}:v2").source_version == "v2"

    artifact.delete(delete_aliases=True)

    assert api.artifact("model:latest").version == "v1"
    assert api.artifact(f"{registry}:latest").version == "v1"
    assert not api.artifact_exists(f"{registry}:v2")
    assert api.artifact(f"{registry}:v0").source_version == "v0"


def test_a_link_downloads_its_sources_files(backend: Backend) -> None:
    source = backend.log("clf", {"w.bin": "weights", "cfg/a.json": "{}"}, type="model")
    target = _registry_collection()
    source.link(target)
    root = soko.Api().artifact(f"{target}:latest").download(root="linked")
    with open(f"{root}/w.bin") as handle:
        assert handle.read() == "weights"


def test_a_run_using_a_link_uses_its_source(backend: Backend) -> None:
    source = backend.log("clf", {"w.bin": "weights"}, type="model")
    target = _registry_collection()
    source.link(target, aliases=["prod"])
    with soko.init(job_type="eval") as run:
        used = run.use_artifact(f"{target}:prod")
        assert used.is_link
    users = soko.Api().artifact("clf:v0").used_by()
    assert [r.job_type for r in users] == ["eval"]


def test_a_link_into_a_plain_collection_is_refused(backend: Backend) -> None:
    backend.log("plain", {"p.txt": "plain"})
    source = backend.log("clf", {"w.bin": "weights"}, type="dataset")
    with pytest.raises(ValidationError, match="not a registry"):
        source.link(f"{backend.project}/plain")


def test_a_registry_is_made_by_its_first_link(backend: Backend) -> None:
    source = backend.log("clf", {"w.bin": "weights"}, type="model")
    name = Backend.unique("fresh")
    link = source.link(f"wandb-registry-{name}/coll")
    assert link.project == f"wandb-registry-{name}"
    registry = soko.Api().registry(name)
    assert (registry.visibility, registry.artifact_types) == ("organization", [])


def test_concurrent_links_into_one_collection_get_distinct_indexes(backend: Backend) -> None:
    target = _registry_collection()
    sources = [backend.log("clf", {"w.bin": f"weights {i}"}, type="model") for i in range(6)]
    barrier = threading.Barrier(len(sources))
    errors: list[BaseException] = []

    def link(artifact: soko.Artifact) -> None:
        try:
            barrier.wait()
            artifact.link(target)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=link, args=(s,)) for s in sources]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    listed = soko.Api().artifacts("model", target)
    assert sorted(a.version for a in listed) == [f"v{i}" for i in range(6)]
    assert sorted(a.source_version for a in listed) == [f"v{i}" for i in range(6)]


def test_one_version_linked_concurrently_is_one_link(backend: Backend) -> None:
    target = _registry_collection()
    backend.log("clf", {"w.bin": "weights"}, type="model")
    barrier = threading.Barrier(4)
    made: list[str] = []
    errors: list[BaseException] = []

    def link(alias: str) -> None:
        try:
            barrier.wait()
            made.append(soko.Api().artifact("clf:v0").link(target, aliases=[alias]).version)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=link, args=(f"a{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert made == ["v0"] * 4
    [only] = soko.Api().artifacts("model", target)
    assert sorted(only.aliases) == ["a0", "a1", "a2", "a3", "latest"]
