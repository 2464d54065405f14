"""The code examples of W&B's Registry documentation that need no W&B web app, on every
backend, written as a W&B user writes them after ``import soko as wandb``.

One case per page: create and edit a registry, link a version (in a run, outside one,
through the Api), download and use a linked version, aliases, tags on collections and
versions, describe a collection, unlink, delete a registry. The placeholders of the pages
are filled with names no other case uses (servers are shared by the session); the
assertions check what each page says happens. The "find registry items" page is
test_backend_registries' filter case.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from backend_suite import Backend, write

import soko as wandb
from soko.errors import NotFoundError


def _weights(name: str, content: str) -> str:
    return str(write(name, content))


def test_create_a_registry_then_edit_and_delete_it(backend: Backend) -> None:
    registry_name = Backend.unique("fine-tuned")
    api = wandb.Api()
    registry = api.create_registry(
        name=registry_name,
        visibility="restricted",
        description="Models fine-tuned for review autocompletion",
        artifact_types=["model"],
    )
    assert registry.full_name == f"wandb-registry-{registry_name}"

    # Edit: the description and the accepted types (types are only ever added).
    registry = api.registry(registry_name)
    registry.description = "Fine-tuned models, reviewed"
    registry.artifact_types.append("dataset")
    registry.save()
    assert api.registry(registry_name).artifact_types == ["dataset", "model"]

    registry.delete()
    with pytest.raises(NotFoundError):
        api.registry(registry_name)


def test_link_a_version_in_a_run_outside_a_run_and_through_the_api(backend: Backend) -> None:
    registry_name = "model"  # every organisation has it
    collection_name = Backend.unique("production-models")
    target_path = f"wandb-registry-{registry_name}/{collection_name}"

    with wandb.init(project=backend.project) as run:
        artifact = wandb.Artifact(name="my-model", type="model")
        artifact.add_file(local_path=_weights("weights.bin", "in a run"))
        run.link_artifact(artifact=artifact, target_path=target_path)

    artifact = wandb.Artifact(name="my-model", type="model")
    artifact.add_file(local_path=_weights("weights.bin", "outside a run"))
    artifact.link(target_path=target_path)

    links = wandb.Api().artifacts(type_name="model", name=target_path)
    assert [(a.version, a.source_version) for a in links] == [("v0", "v0"), ("v1", "v1")]
    assert wandb.Api().artifact(f"{target_path}:latest").source_artifact.id == artifact.id

    # Through the public API: a version logged earlier, into another collection.
    api = wandb.Api()
    logged = api.artifact(f"{backend.project}/my-model:v0")
    other_path = f"wandb-registry-{registry_name}/{Backend.unique('candidates')}"
    logged.link(target_path=other_path, aliases=["candidate"])
    assert api.artifact(f"{other_path}:candidate").source_version == "v0"


def test_download_and_use_a_version_from_a_registry(backend: Backend, tmp_path: Path) -> None:
    REGISTRY = "model"
    COLLECTION = Backend.unique("detector")
    ALIAS = "production"
    source = backend.log("detector", {"model.pt": "trained weights"}, type="model")
    source.link(f"wandb-registry-{REGISTRY}/{COLLECTION}", aliases=[ALIAS])

    with wandb.init(project=backend.project) as run:
        artifact_name = f"wandb-registry-{REGISTRY}/{COLLECTION}:{ALIAS}"
        fetched_artifact = run.use_artifact(artifact_or_name=artifact_name)
        download_path = fetched_artifact.download(root=str(tmp_path / "in-run"))
    assert Path(download_path, "model.pt").read_text() == "trained weights"
    # The run used the version holding the files: lineage goes through the source.
    assert [r.id for r in source.used_by()] == [run.id]

    api = wandb.Api()
    artifact = api.artifact(name=f"wandb-registry-{REGISTRY}/{COLLECTION}:{ALIAS}")
    assert Path(artifact.download(root=str(tmp_path / "api")), "model.pt").exists()
    assert (artifact.is_link, artifact.source_artifact.id) == (True, source.id)


def test_aliases_on_a_linked_version(backend: Backend) -> None:
    target_path = f"wandb-registry-model/{Backend.unique('classifier')}"
    first = backend.log("clf", {"w.bin": "one"}, type="model")
    second = backend.log("clf", {"w.bin": "two"}, type="model")
    with wandb.init(project=backend.project) as run:
        run.link_artifact(first, target_path, aliases=["staging"])
    second.link(target_path)

    api = wandb.Api()
    artifact = api.artifact(f"{target_path}:v1")
    artifact.aliases.append("production")
    artifact.save()
    assert api.artifact(f"{target_path}:production").source_artifact.id == second.id
    assert api.artifact(f"{target_path}:staging").source_artifact.id == first.id
    # Aliases in the registry are the link's own: the logged versions keep theirs.
    assert "production" not in api.artifact(f"{backend.project}/clf:v1").aliases


def test_tags_on_collections_and_versions_and_a_collection_description(
    backend: Backend,
) -> None:
    collection_name = Backend.unique("zoo")
    path = f"wandb-registry-dataset/{collection_name}"
    for n in range(2):
        backend.log("zoo-tensors", {"t.npy": f"tensor {n}"}).link(path)

    collection = wandb.Api().artifact_collection(type_name="dataset", name=path)
    collection.tags = ["animals"]
    collection.save()
    collection.tags.append("images")
    collection.description = "Tensors of the zoo dataset"
    collection.save()
    again = wandb.Api().artifact_collection(type_name="dataset", name=path)
    assert sorted(again.tags) == ["animals", "images"]
    assert again.description == "Tensors of the zoo dataset"
    again.tags.remove("animals")
    again.save()
    assert wandb.Api().artifact_collection("dataset", path).tags == ["images"]

    artifact = wandb.Api().artifact(name=f"{path}:v1", type="dataset")
    artifact.tags = ["ready-for-review"]
    artifact.save()
    assert wandb.Api().artifact(f"{path}:v1").tags == ["ready-for-review"]


def test_unlink_a_version_from_a_registry(backend: Backend) -> None:
    target_path = f"wandb-registry-model/{Backend.unique('retired')}"
    source = backend.log("clf", {"w.bin": "old"}, type="model")
    source.link(target_path, aliases=["production"])

    artifact = wandb.Api().artifact(f"{target_path}:production")
    artifact.unlink()
    with pytest.raises(NotFoundError):
        wandb.Api().artifact(f"{target_path}:production")
    # The version that was linked stays in its project.
    assert wandb.Api().artifact(f"{backend.project}/clf:v0").id == source.id
