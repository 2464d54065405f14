"""Registries on every backend: create, read, change, delete, search with W&B's filter
documents (as W&B's "find registry items" page writes them), allowed types, registry paths
that resolve from every entity of the organisation, and editable collections."""

from __future__ import annotations

import pytest
from backend_suite import Backend

import soko
from soko.errors import ConflictError, NotFoundError, ValidationError


def test_create_read_change_and_delete_a_registry(backend: Backend) -> None:
    api = soko.Api()
    name = Backend.unique("reg")
    created = api.create_registry(
        name, visibility="restricted", description="models we ship", artifact_types=["model"]
    )
    assert (created.name, created.full_name) == (name, f"wandb-registry-{name}")
    assert (created.visibility, created.artifact_types) == ("restricted", ["model"])
    assert not created.allow_all_artifact_types
    with pytest.raises(ConflictError):
        api.create_registry(name, visibility="organization")

    found = api.registry(name)
    assert found.description == "models we ship"
    found.description = "models we ship, reviewed"
    found.visibility = "organization"
    found.artifact_types.append("dataset")
    found.save()
    again = api.registry(f"wandb-registry-{name}")
    assert again.description == "models we ship, reviewed"
    assert again.visibility == "organization"
    assert again.artifact_types == ["dataset", "model"]

    again.artifact_types.remove("model")
    with pytest.raises(ValidationError, match="cannot be removed"):
        again.save()
    again.load()
    assert again.artifact_types == ["dataset", "model"]

    again.delete()
    with pytest.raises(NotFoundError):
        api.registry(name)


def test_bad_registry_settings_are_refused(backend: Backend) -> None:
    api = soko.Api()
    with pytest.raises(ValidationError):
        api.create_registry(Backend.unique("reg"), visibility="public")
    with pytest.raises(ValidationError):
        api.create_registry("bad/name", visibility="organization")


def test_allowed_types_are_enforced_on_link(backend: Backend) -> None:
    api = soko.Api()
    name = Backend.unique("models")
    api.create_registry(name, visibility="organization", artifact_types=["model"])
    dataset = backend.log("data", {"d.csv": "1,2"}, type="dataset")
    with pytest.raises(ValidationError, match="accepts artifacts of type"):
        dataset.link(f"wandb-registry-{name}/golden")
    model = backend.log("clf", {"w.bin": "weights"}, type="model")
    assert model.link(f"wandb-registry-{name}/golden").version == "v0"


def test_registries_and_their_items_are_found_by_filters(backend: Backend) -> None:
    api = soko.Api()
    tag = Backend.unique("t")
    vision = Backend.unique("vision-model")
    other = Backend.unique("text")
    api.create_registry(vision, visibility="organization")
    api.create_registry(other, visibility="organization")
    model = backend.log("clf", {"w.bin": "weights 0"}, type="model")
    newer = backend.log("clf", {"w.bin": "weights 1"}, type="model")
    model.link(f"wandb-registry-{vision}/yolo-detector", aliases=["production"])
    newer.link(f"wandb-registry-{vision}/yolo-detector")
    newer.link(f"wandb-registry-{vision}/resnet")
    model.link(f"wandb-registry-{other}/yolo-text")
    tagged = api.artifact(f"wandb-registry-{vision}/resnet:v0")
    tagged.tags = [f"image-classification-{tag}"]
    tagged.save()
    yolo = api.artifact_collection("model", f"wandb-registry-{vision}/yolo-detector")
    yolo.tags = [f"cnn-{tag}"]
    yolo.save()

    registries = api.registries(filter={"name": {"$regex": vision}})
    assert [r.name for r in registries] == [vision]
    names = {r.name for r in api.registries()}
    assert {vision, other, "model", "dataset"} <= names

    found = api.registries(filter={"name": {"$in": [vision, other]}}).collections(
        filter={"name": {"$regex": "yolo"}}
    )
    assert sorted(c.name for c in found) == ["yolo-detector", "yolo-text"]
    both = api.registries().collections(filter={"name": {"$regex": "yolo"}, "tag": f"cnn-{tag}"})
    assert [c.name for c in both] == ["yolo-detector"]

    versions = (
        api.registries(filter={"name": {"$regex": vision}})
        .collections()
        .versions(filter={"$or": [{"tag": f"image-classification-{tag}"}, {"alias": "production"}]})
    )
    # The tag set through the resnet link is its source's, which yolo-detector:v1 links too.
    assert sorted((a.name, a.source_version) for a in versions) == [
        ("resnet:v0", "v1"),
        ("yolo-detector:v0", "v0"),
        ("yolo-detector:v1", "v1"),
    ]
    registry = api.registry(vision)
    latest = registry.versions(filter={"alias": "latest", "created_at": {"$gte": "2024-01-08"}})
    assert sorted(a.name for a in latest) == ["resnet:v0", "yolo-detector:v1"]
    assert registry.versions(filter={"created_at": {"$lt": "2024-01-08"}}) == []
    assert [c.name for c in registry.collections(filter={"$nor": [{"name": "resnet"}]})] == [
        "yolo-detector"
    ]
    with pytest.raises(ValidationError, match="Cannot filter"):
        registry.collections(filter={"colour": "red"})
    with pytest.raises(ValidationError, match="Unknown filter operator"):
        registry.versions(filter={"alias": {"$like": "prod"}})


def test_a_registry_path_resolves_from_every_entity_of_the_organisation(
    backend: Backend,
) -> None:
    source = backend.log("clf", {"w.bin": "weights"}, type="model")
    target = f"wandb-registry-model/{Backend.unique('shared')}"
    source.link(target, aliases=["prod"])
    # Another team of the same organisation reads (and links into) the same collection.
    other_team = soko.Api(overrides={"entity": Backend.unique("team-b")})
    linked = other_team.artifact(f"{target}:prod")
    assert linked.source_artifact.id == source.id
    assert linked.entity == soko.Api().artifact(f"{target}:prod").entity
    with soko.init(entity=Backend.unique("team-c")) as run:
        assert run.use_artifact(f"{target}:prod").digest == source.digest
    org = linked.entity
    assert soko.Api().artifact(f"{org}/{target}:v0").source_version == "v0"


def test_a_collection_is_renamed_and_its_versions_follow(backend: Backend) -> None:
    backend.log("cats", {"a.txt": "a"})
    backend.log("cats", {"a.txt": "b"}, aliases=["best"])
    api = soko.Api()
    collection = api.artifact_collection("dataset", "cats")
    collection.name = "felines"
    collection.description = "all the cats"
    collection.tags = ["pets"]
    collection.save()

    assert api.artifact("felines:v0").digest == backend_digest(api, "felines:v0")
    assert api.artifact("felines:best").version == "v1"
    assert not api.artifact_exists("cats:v0")
    with pytest.raises(NotFoundError):
        api.artifact("cats:latest")
    fresh = api.artifact_collection("dataset", "felines")
    assert (fresh.description, fresh.tags) == ("all the cats", ["pets"])
    # The next log of the new name continues its numbering.
    assert backend.log("felines", {"a.txt": "c"}).version == "v2"


def backend_digest(api: soko.Api, name: str) -> str:
    return str(api.artifact(name).digest)


def test_renaming_onto_a_taken_name_is_refused(backend: Backend) -> None:
    backend.log("cats", {"a.txt": "a"})
    backend.log("dogs", {"a.txt": "d"})
    collection = soko.Api().artifact_collection("dataset", "cats")
    collection.name = "dogs"
    with pytest.raises(ConflictError):
        collection.save()
    assert soko.Api().artifact("cats:v0").version == "v0"


def test_a_collection_is_deleted_with_its_versions(backend: Backend) -> None:
    backend.log("tmp", {"a.txt": "a"})
    backend.log("tmp", {"a.txt": "b"})
    linked = backend.log("kept", {"k.txt": "k"}, type="model")
    target = f"wandb-registry-model/{Backend.unique('c')}"
    linked.link(target)
    api = soko.Api()
    api.artifact_collection("dataset", "tmp").delete()
    assert not api.artifact_exists("tmp:v0")
    assert not api.artifact_collection_exists("tmp", "dataset")

    with pytest.raises(ValidationError, match="linked"):
        api.artifact_collection("model", "kept").delete()
    api.artifact_collection("model", target).delete()
    assert not api.artifact_exists(f"{target}:v0")
    api.artifact_collection("model", "kept").delete()
    assert not api.artifact_exists("kept:v0")


def test_a_project_lists_its_artifact_types(backend: Backend) -> None:
    backend.log("data", {"d.csv": "1"}, type="dataset")
    backend.log("clf", {"w.bin": "w"}, type="model")
    project = soko.Api().project(backend.project)
    assert sorted(t.name for t in project.artifact_types()) == ["dataset", "model"]
    assert [
        c.name for t in project.artifacts_types() if t.name == "model" for c in t.collections()
    ] == ["clf"]
