"""The code examples of W&B's artifact documentation, run on soko's embedded store.

Each test is one page of https://docs.wandb.ai/models/artifacts/ (and the registry pages):
its snippets are written as W&B users write them, after ``import soko as wandb``, with the
placeholders filled in and the files they name created first. No server is involved. The
assertions check what the page says should happen: versions, aliases, the files a download
writes, lineage.

Where a snippet cannot run on W&B itself as printed (a missing type, a name with a space,
a typo in a variable), the smallest correction is made and a comment says which.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

import soko as wandb
from soko.errors import DigestMismatchError, ValidationError

pytestmark = pytest.mark.usefixtures("soko_env")


def write(path: str, content: str | bytes) -> str:
    """Create *path* (relative to the test's working directory) holding *content*."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, str):
        target.write_text(content)
    else:
        target.write_bytes(content)
    return path


def tree(root: str) -> dict[str, bytes]:
    """Every file below *root*: relative POSIX path -> bytes."""
    found: dict[str, bytes] = {}
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            full = os.path.join(dirpath, name)
            found[os.path.relpath(full, root).replace(os.sep, "/")] = Path(full).read_bytes()
    return found


def paths(artifact: wandb.Artifact) -> list[str]:
    return sorted(entry.path for entry in artifact.manifest)


def make_root_directory() -> None:
    """The folder the "Add files to an artifact" section assumes."""
    write("hello.txt", "hello world\n")
    write("images/cat.png", b"\x89PNG cat")
    write("images/dog.png", b"\x89PNG dog")
    write("checkpoints/model.h5", b"checkpoint weights")
    write("models/model.h5", b"final weights")
    write("model.h5", b"top-level weights")


# ----- Tutorial: create, track, and use a dataset artifact ---------------------------------


def test_walkthrough_logs_a_dataset_and_downloads_it_in_a_later_run() -> None:
    write("dataset.h5", b"\x00\x01 bicycles")

    assert wandb.login() is True

    with wandb.init(project="artifacts-example", job_type="upload-dataset") as run:
        artifact = wandb.Artifact(name="bicycle-dataset", type="dataset")
        artifact.add_file(local_path="dataset.h5")
        run.log_artifact(artifact)
    producer = run

    with wandb.init(project="artifacts-example", job_type="training") as run:
        artifact = run.use_artifact("bicycle-dataset:latest")
        artifact_dir = artifact.download()
    consumer = run

    assert artifact.version == "v0"
    assert artifact.aliases == ["latest"]
    assert Path(artifact_dir) == Path("artifacts") / "bicycle-dataset:v0"
    assert tree(artifact_dir) == {"dataset.h5": b"\x00\x01 bicycles"}
    assert artifact.logged_by().id == producer.id
    assert [r.id for r in artifact.used_by()] == [consumer.id]
    assert producer.state == "finished" and consumer.state == "finished"


# ----- Create an artifact ----------------------------------------------------------------


def test_construct_an_artifact_in_three_steps() -> None:
    make_root_directory()

    artifact = wandb.Artifact(name="bike-images", type="dataset")
    artifact.add_file(local_path="hello.txt", name="docs/hello.txt")
    artifact.add_dir(local_path="images", name="pictures")

    with wandb.init(project="construct", job_type="upload") as run:
        run.log_artifact(artifact)

    logged = wandb.Api().artifact("construct/bike-images:latest")
    assert logged.version == "v0"
    assert logged.type == "dataset"
    assert paths(logged) == ["docs/hello.txt", "pictures/cat.png", "pictures/dog.png"]
    assert tree(logged.download()) == {
        "docs/hello.txt": b"hello world\n",
        "pictures/cat.png": b"\x89PNG cat",
        "pictures/dog.png": b"\x89PNG dog",
    }


@pytest.mark.parametrize(
    ("call", "expected"),
    [
        (lambda a: a.add_file("model.h5"), ["model.h5"]),
        (lambda a: a.add_file("checkpoints/model.h5"), ["model.h5"]),
        (lambda a: a.add_file("model.h5", name="models/mymodel.h5"), ["models/mymodel.h5"]),
        (lambda a: a.add_file(local_path="hello.txt", name="new/path/hello_world.txt"),
         ["new/path/hello_world.txt"]),
        (lambda a: a.add_dir("images"), ["cat.png", "dog.png"]),
        (lambda a: a.add_dir("images", name="images"), ["images/cat.png", "images/dog.png"]),
    ],
)  # fmt: skip
def test_add_files_table_gives_the_documented_paths(
    call: Callable[[wandb.Artifact], object], expected: list[str]
) -> None:
    make_root_directory()
    artifact = wandb.Artifact(name="table-row", type="dataset")
    call(artifact)
    assert paths(artifact) == expected

    with wandb.init(project="construct") as run:
        run.log_artifact(artifact)
    assert paths(wandb.Api().artifact("construct/table-row:v0")) == expected


def test_new_file_adds_the_written_file() -> None:
    artifact = wandb.Artifact(name="notes", type="dataset")
    with artifact.new_file("hello.txt") as f:
        f.write("written through new_file")

    with wandb.init() as run:
        run.log_artifact(artifact)

    assert paths(artifact) == ["hello.txt"]
    assert tree(artifact.download()) == {"hello.txt": b"written through new_file"}


def test_log_artifact_in_a_loop_makes_one_version_per_content() -> None:
    with wandb.init() as run:
        for i in range(10):
            a = wandb.Artifact(
                name="race",
                type="dataset",
                metadata={
                    "index": i,
                },
            )
            # ... add files to artifact a ...
            a.add_file(write(f"part-{i}.txt", f"part {i}"))
            run.log_artifact(a)

    versions = wandb.Api().artifacts("dataset", "race")
    assert sorted(v.version for v in versions) == [f"v{i}" for i in range(10)]
    # The page warns that v0 need not hold index 0; every index is there exactly once.
    assert sorted(v.metadata["index"] for v in versions) == list(range(10))
    latest = wandb.Api().artifact("race:latest")
    assert latest.version == "v9"


# ----- Create an artifact version --------------------------------------------------------


def test_new_version_inside_and_outside_of_a_run() -> None:
    write("image1.png", b"first image")

    with wandb.init() as run:
        artifact = wandb.Artifact("artifact_name", "artifact_type")
        artifact.add_file("image1.png")
        run.log_artifact(artifact)
    assert artifact.version == "v0"

    # The same content again: W&B checksums it and makes no new version.
    with wandb.init() as run:
        artifact = wandb.Artifact("artifact_name", "artifact_type")
        artifact.add_file("image1.png")
        run.log_artifact(artifact)
    assert artifact.version == "v0"

    write("image1.png", b"second image")
    artifact = wandb.Artifact("artifact_name", "artifact_type")
    artifact.add_file("image1.png")
    artifact.save()
    assert artifact.version == "v1"

    api = wandb.Api()
    assert [a.version for a in api.artifacts("artifact_type", "artifact_name")] == ["v0", "v1"]
    assert api.artifact("artifact_name:latest").version == "v1"
    assert tree(api.artifact("artifact_name:v0").download()) == {"image1.png": b"first image"}
    assert tree(api.artifact("artifact_name:v1").download()) == {"image1.png": b"second image"}


def _log_my_artifact(project: str | None = None) -> None:
    write("v0/kept.txt", "kept")
    write("v0/deleted_file.txt", "to delete")
    write("v0/dir_to_remove/a.txt", "a")
    write("v0/dir_to_remove/b.txt", "b")
    with wandb.init(project=project) as run:
        artifact = wandb.Artifact("my_artifact", "dataset")
        artifact.add_dir("v0")
        run.log_artifact(artifact)


def test_incremental_artifact_inside_a_run() -> None:
    _log_my_artifact()
    write("file_to_add.txt", "added")

    with wandb.init(job_type="modify dataset") as run:
        saved_artifact = run.use_artifact(
            "my_artifact:latest"
        )  # fetch artifact and input it into your run
        draft_artifact = saved_artifact.new_draft()  # create a draft version

        # modify a subset of files in the draft version
        draft_artifact.add_file("file_to_add.txt")
        draft_artifact.remove("dir_to_remove/")
        run.log_artifact(
            draft_artifact
        )  # log your changes to create a new version and mark it as output to your run

    assert saved_artifact.version == "v0"
    assert draft_artifact.version == "v1"
    assert paths(draft_artifact) == ["deleted_file.txt", "file_to_add.txt", "kept.txt"]
    assert tree(draft_artifact.download()) == {
        "deleted_file.txt": b"to delete",
        "file_to_add.txt": b"added",
        "kept.txt": b"kept",
    }
    assert draft_artifact.logged_by().id == run.id
    assert [r.id for r in saved_artifact.used_by()] == [run.id]
    assert paths(wandb.Api().artifact("my_artifact:v0")) == [
        "deleted_file.txt",
        "dir_to_remove/a.txt",
        "dir_to_remove/b.txt",
        "kept.txt",
    ]


def test_incremental_artifact_outside_of_a_run() -> None:
    _log_my_artifact()
    write("modified_file.txt", "new content")

    client = wandb.Api()
    saved_artifact = client.artifact("my_artifact:latest")  # load your artifact
    draft_artifact = saved_artifact.new_draft()  # create a draft version

    # modify a subset of files in the draft version
    draft_artifact.remove("deleted_file.txt")
    draft_artifact.add_file("modified_file.txt")
    draft_artifact.save()  # commit changes to the draft

    latest = client.artifact("my_artifact:latest")
    assert latest.version == "v1"
    assert paths(latest) == [
        "dir_to_remove/a.txt",
        "dir_to_remove/b.txt",
        "kept.txt",
        "modified_file.txt",
    ]

    # The "Modify" tab: remove the old entry, add the new content under the same path.
    write("modified_file.txt", "newer content")
    draft_artifact = client.artifact("my_artifact:latest").new_draft()
    draft_artifact.remove("modified_file.txt")
    draft_artifact.add_file("modified_file.txt")
    draft_artifact.save()
    assert client.artifact("my_artifact:latest").version == "v2"
    root = client.artifact("my_artifact:v2").download()
    assert Path(root, "modified_file.txt").read_text() == "newer content"


def test_incremental_draft_saved_outside_a_run_stays_in_its_project() -> None:
    _log_my_artifact(project="datasets")
    write("file_to_add.txt", "added")

    client = wandb.Api()
    saved_artifact = client.artifact("datasets/my_artifact:latest")
    draft_artifact = saved_artifact.new_draft()
    draft_artifact.add_file("file_to_add.txt")
    draft_artifact.save()

    assert draft_artifact.project == "datasets"
    assert client.artifact("datasets/my_artifact:latest").version == "v1"
    assert not client.artifact_exists("my_artifact")  # nothing in the default project


# ----- Update an artifact ----------------------------------------------------------------


def test_update_the_description_during_a_run() -> None:
    write("data.csv", "a,b\n1,2\n")
    with wandb.init(project="example") as run:
        artifact = wandb.Artifact("bike-dataset", "dataset")
        artifact.add_file("data.csv")
        run.log_artifact(artifact)

    with wandb.init(project="example") as run:
        artifact = run.use_artifact("bike-dataset:latest")
        artifact.description = "Bikes of Amsterdam, 2024"
        artifact.save()

    reloaded = wandb.Api().artifact("example/bike-dataset:latest")
    assert reloaded.description == "Bikes of Amsterdam, 2024"
    assert reloaded.version == "v0"


def test_update_with_the_public_api_only() -> None:
    write("data.csv", "a,b\n1,2\n")
    with wandb.init(entity="my-team", project="example") as run:
        artifact = wandb.Artifact("artifact", "dataset", metadata={"oldKey": "old value"})
        artifact.add_file("data.csv")
        run.log_artifact(artifact, aliases=["staging"])

    api = wandb.Api()

    artifact = api.artifact("my-team/example/artifact:staging")

    # Update the description
    artifact.description = "My new description"

    # Selectively update metadata keys
    artifact.metadata["oldKey"] = "new value"
    assert artifact.metadata == {"oldKey": "new value"}

    # Replace the metadata entirely
    artifact.metadata = {"newKey": "new value"}

    # Add an alias
    artifact.aliases.append("best")

    # Remove an alias
    artifact.aliases.remove("latest")

    # Completely replace the aliases
    artifact.aliases = ["replaced"]

    # Persist all artifact modifications
    artifact.save()

    reloaded = api.artifact("my-team/example/artifact:replaced")
    assert reloaded.version == "v0"
    assert reloaded.description == "My new description"
    assert reloaded.metadata == {"newKey": "new value"}
    assert "replaced" in reloaded.aliases
    assert "staging" not in reloaded.aliases and "best" not in reloaded.aliases
    assert not api.artifact_exists("my-team/example/artifact:staging")
    # soko keeps `latest` on the newest version whatever the user asks.
    assert api.artifact("my-team/example/artifact:latest").version == "v0"


# ----- Create an artifact alias ----------------------------------------------------------


def test_custom_alias_when_logging_and_latest_when_using() -> None:
    write("model.h5", b"weights v0")
    with wandb.init(project="bikes") as run:
        artifact = wandb.Artifact("run-3nq3ctyy-bike-model", type="model")
        artifact.add_file("model.h5")
        run.log_artifact(artifact, aliases=["latest", "best-ap50"])

    write("model.h5", b"weights v1")
    with wandb.init(project="bikes") as run:
        artifact = wandb.Artifact("run-3nq3ctyy-bike-model", type="model")
        artifact.add_file("model.h5")
        run.log_artifact(artifact)

    with wandb.init(project="bikes") as run:
        artifact = run.use_artifact("run-3nq3ctyy-bike-model:latest")
        artifact.download()
    assert artifact.version == "v1"
    assert Path("artifacts/run-3nq3ctyy-bike-model:v1/model.h5").read_bytes() == b"weights v1"

    best = wandb.Api().artifact("bikes/run-3nq3ctyy-bike-model:best-ap50")
    assert best.version == "v0"
    assert sorted(best.aliases) == ["best-ap50"]


# ----- Download and use artifacts --------------------------------------------------------


def _log_bike_dataset(project: str, entity: str | None = None) -> None:
    write("bikes/bike.png", b"a bike")
    write("bikes/images/bikes/one.png", b"bike one")
    write("bikes/images/bikes/two.png", b"bike two")
    write("bikes/images/cars/car.png", b"a car")
    with wandb.init(project=project, entity=entity) as run:
        artifact = wandb.Artifact("bike-dataset", "dataset")
        artifact.add_dir("bikes")
        run.log_artifact(artifact, aliases=["alias"])


def test_download_and_use_during_a_run() -> None:
    _log_bike_dataset("example")

    run = wandb.init(project="example", job_type="job-type")
    artifact = run.use_artifact("bike-dataset:latest")
    datadir = artifact.download()
    assert tree(datadir) == {
        "bike.png": b"a bike",
        "images/bikes/one.png": b"bike one",
        "images/bikes/two.png": b"bike two",
        "images/cars/car.png": b"a car",
    }

    name = "images/cars/car.png"
    path = artifact.get_path(name)
    assert path.ref is None
    downloaded = path.download("single")
    assert Path(downloaded).read_bytes() == b"a car"
    assert tree("single") == {"images/cars/car.png": b"a car"}
    entry = artifact.get_entry("bike.png")
    assert Path(entry.download()).read_bytes() == b"a bike"
    run.finish()
    assert [r.id for r in artifact.used_by()] == [run.id]


def test_partial_download_by_path_prefix() -> None:
    _log_bike_dataset("example")
    with wandb.init(project="example") as run:
        artifact = run.use_artifact("bike-dataset:latest")

        only_bike = artifact.download(root="one", path_prefix="bike.png")  # only bike.png
        folder = artifact.download(root="folder", path_prefix="images/bikes/")

    assert tree(only_bike) == {"bike.png": b"a bike"}
    assert tree(folder) == {
        "images/bikes/one.png": b"bike one",
        "images/bikes/two.png": b"bike two",
    }


def test_download_outside_of_a_run() -> None:
    _log_bike_dataset("project", entity="entity")

    api = wandb.Api()
    artifact = api.artifact("entity/project/bike-dataset:alias")
    root = artifact.download()

    assert Path(root) == Path("artifacts/bike-dataset:v0")
    assert tree(root)["images/bikes/one.png"] == b"bike one"
    assert len(tree(root)) == 4


def test_use_an_artifact_from_another_project_and_entity() -> None:
    _log_bike_dataset("my-project")
    _log_bike_dataset("my-project", entity="my-entity")

    run = wandb.init(project="example", job_type="job-type")
    artifact = run.use_artifact("my-project/bike-dataset:alias")
    assert (artifact.entity, artifact.project) == ("local", "my-project")
    artifact = run.use_artifact("my-entity/my-project/bike-dataset:alias")
    assert (artifact.entity, artifact.project) == ("my-entity", "my-project")
    run.finish()

    used = wandb.Api().run(f"example/{run.id}").used_artifacts()
    assert sorted(a.qualified_name for a in used) == [
        "local/my-project/bike-dataset:v0",
        "my-entity/my-project/bike-dataset:v0",
    ]


def test_construct_and_use_an_artifact_simultaneously() -> None:
    write("model.h5", b"reference weights")
    run = wandb.init(project="example")

    # The page writes wandb.Artifact("reference model"): W&B too needs a type and refuses
    # the space in the name.
    artifact = wandb.Artifact("reference-model", "model")
    artifact.add_file("model.h5")
    run.use_artifact(artifact)
    run.use_artifact(artifact)  # idempotent
    run.finish()

    assert artifact.version == "v0"
    assert [r.id for r in artifact.used_by()] == [run.id]
    assert [a.version for a in wandb.Api().artifacts("model", "example/reference-model")] == ["v0"]


# ----- Track external files --------------------------------------------------------------


def test_track_and_download_files_in_a_filesystem(soko_env: Any) -> None:
    mount = soko_env.workdir / "mount"
    write("mount/datasets/mnist/0.png", b"zero")
    write("mount/datasets/mnist/sub/1.png", b"one")
    write("mount/models/cnn/my_model.h5", b"cnn weights")

    with wandb.init() as run:
        artifact = wandb.Artifact("mnist", type="dataset")
        artifact.add_reference(f"file://{mount}/datasets/mnist/")
        run.log_artifact(artifact)

    with wandb.init() as run:
        # Training here...
        # Write model to disk
        # Create an artifact object
        model_artifact = wandb.Artifact("cnn", type="model")
        # Add a reference to the model file path
        model_artifact.add_reference(f"file://{mount}/models/cnn/my_model.h5")
        # Log the artifact to W&B
        run.log_artifact(model_artifact)

    with wandb.init() as run:
        artifact = run.use_artifact("local/uncategorized/mnist:latest", type="dataset")
        artifact_dir = artifact.download()
    assert Path(artifact_dir) == Path("artifacts/mnist:v0")
    assert tree(artifact_dir) == {"0.png": b"zero", "sub/1.png": b"one"}
    assert all(e.ref is not None for e in artifact.manifest)

    with wandb.init() as run:
        artifact = run.use_artifact(artifact_or_name="cnn", type="model")
        datadir = artifact.download()
    assert tree(datadir) == {"my_model.h5": b"cnn weights"}

    # "download() throws an error if it cannot reconstruct the artifact", e.g. a file that
    # was overwritten since it was logged.
    (mount / "models/cnn/my_model.h5").write_bytes(b"overwritten")
    with pytest.raises(DigestMismatchError):
        wandb.Api().artifact("cnn:latest").download(root="again")
    assert not Path("again/my_model.h5").exists()


# ----- Manage artifact data retention (TTL) ----------------------------------------------


def test_ttl_set_edit_view_and_deactivate() -> None:
    write("my_file", "retained for a while")

    with wandb.init(project="my-project-name", entity="my-entity") as run:
        artifact = wandb.Artifact(name="artifact-name", type="dataset")
        artifact.add_file("my_file")

        artifact.ttl = timedelta(days=30)  # Set TTL policy
        run.log_artifact(artifact)

    with wandb.init(project="my-project-name", entity="my-entity") as run:
        artifact = run.use_artifact(artifact_or_name="artifact-name")
        print(artifact.type)
        assert artifact.type == "dataset"
        assert artifact.ttl == timedelta(days=30)

        artifact = run.use_artifact("my-entity/my-project-name/artifact-name:latest")
        artifact.ttl = timedelta(days=365 * 2)  # Delete in two years
        artifact.save()
        assert artifact.ttl == timedelta(days=730)

    api = wandb.Api()
    artifact = api.artifact("my-entity/my-project-name/artifact-name:latest")
    assert artifact.ttl == timedelta(days=730)
    artifact.ttl = timedelta(days=365)  # Delete in one year
    artifact.save()
    assert api.artifact("my-entity/my-project-name/artifact-name:v0").ttl == timedelta(days=365)

    with wandb.init(project="my-project-name", entity="my-entity") as run:
        artifact = run.use_artifact("my-entity/my-project-name/artifact-name:latest")
        artifact.ttl = None
        artifact.save()
        print(artifact.ttl)
    assert api.artifact("my-entity/my-project-name/artifact-name:v0").ttl is None


# ----- Delete an artifact ----------------------------------------------------------------


def _log_three(run_project: str = "project") -> str:
    with wandb.init(entity="entity", project=run_project) as run:
        for i, aliases in enumerate([["best"], [], ["production", "candidate"]]):
            artifact = wandb.Artifact("model-x", "model")
            artifact.add_file(write(f"m{i}.h5", f"weights {i}"), name="model.h5")
            run.log_artifact(artifact, aliases=aliases)
    return str(run.id)


def test_delete_artifact_versions_logged_by_a_run() -> None:
    run_id = _log_three()
    api = wandb.Api()

    run = api.run(f"entity/project/{run_id}")
    refused = []
    for artifact in run.logged_artifacts():
        try:
            artifact.delete()
        except ValidationError:
            refused.append(artifact.version)
    # v2 held `latest` only besides its user aliases; v1 (no alias) went; v0 and v2 have
    # user aliases and need delete_aliases=True.
    assert refused == ["v0", "v2"]
    assert [a.version for a in api.artifacts("model", "entity/project/model-x")] == ["v0", "v2"]

    run = api.run(f"entity/project/{run_id}")
    for artifact in run.logged_artifacts():
        if artifact.state == "DELETED":
            continue
        # Set delete_aliases=True in order to delete
        # artifacts with one more aliases
        artifact.delete(delete_aliases=True)
    assert api.artifacts("model", "entity/project/model-x") == []
    assert not api.artifact_exists("entity/project/model-x:latest")
    assert not api.artifact_exists("entity/project/model-x:best")


def test_delete_versions_with_a_specific_version_name() -> None:
    with wandb.init(entity="entity", project="project_name") as run:
        for i in range(5):
            artifact = wandb.Artifact("series", "dataset")
            artifact.add_file(write(f"s{i}.txt", f"step {i}"), name="s.txt")
            run.log_artifact(artifact)
    api = wandb.Api()

    runs = api.run(f"entity/project_name/{run.id}")

    # Delete artifact ith alias 'v3' and 'v4
    for artifact_version in runs.logged_artifacts():
        # Replace with your own deletion logic.
        if artifact_version.name[-2:] == "v3" or artifact_version.name[-2:] == "v4":
            # The page calls `artifact.delete(...)`, a name it never defined.
            artifact_version.delete(delete_aliases=True)

    versions = api.artifacts("dataset", "entity/project_name/series")
    assert [v.version for v in versions] == ["v0", "v1", "v2"]
    # `latest` moved to the newest version left.
    assert api.artifact("entity/project_name/series:latest").version == "v2"


def test_delete_all_versions_that_have_no_alias() -> None:
    _log_three()

    # Provide your entity and a project name when you
    # use wandb.Api methods.
    api = wandb.Api(overrides={"project": "project", "entity": "entity"})

    artifact_type, artifact_name = "model", "model-x"  # provide type and name
    for v in api.artifact_versions(artifact_type, artifact_name):
        # Clean up versions that don't have an alias such as 'latest'.
        # NOTE: You can put whatever deletion logic you want here.
        if len(v.aliases) == 0:
            v.delete()

    assert [v.version for v in api.artifacts("model", "model-x")] == ["v0", "v2"]
    assert not api.artifact_exists("model-x:v1")


# ----- Explore artifact graphs -----------------------------------------------------------


def test_walk_the_lineage_graph_from_an_artifact() -> None:
    write("image1.png", b"pixels")
    with wandb.init() as run:
        artifact = wandb.Artifact("artifact_name", "artifact_type")

        # Add Files and Assets to the artifact using
        # `.add`, `.add_file`, `.add_dir`, and `.add_reference`
        artifact.add_file("image1.png")
        run.log_artifact(artifact)
    producer = run

    consumers = []
    for _ in range(2):
        with wandb.init(job_type="train") as run:
            run.use_artifact("artifact_name:latest")
        consumers.append(run.id)

    # Walk up and down the graph from an artifact:
    producer_run = artifact.logged_by()
    consumer_runs = artifact.used_by()

    assert producer_run.id == producer.id
    assert sorted(r.id for r in consumer_runs) == sorted(consumers)
    assert [a.name for a in producer_run.logged_artifacts()] == ["artifact_name:v0"]
    assert all(r.job_type == "train" for r in consumer_runs)
    assert [a.name for a in consumer_runs[0].used_artifacts()] == ["artifact_name:v0"]


# ----- Registry: link an artifact version, model registry --------------------------------


def test_link_an_artifact_version_within_a_run() -> None:
    write("weights.bin", b"v0 weights")
    entity = "team-entity"  # Your team entity
    project = "project-name"  # The name of the project that contains your artifact

    # Initialize a run
    with wandb.init(entity=entity, project=project) as run:
        artifact = wandb.Artifact(name="my-model", type="model")
        artifact.add_file(local_path="weights.bin")

        # Specify the collection and registry to link the artifact to
        REGISTRY_NAME = "model"
        COLLECTION_NAME = "production-models"
        target_path = f"wandb-registry-{REGISTRY_NAME}/{COLLECTION_NAME}"

        # Link the artifact to the collection
        run.link_artifact(artifact=artifact, target_path=target_path)

    api = wandb.Api()
    linked = api.artifact(f"{entity}/wandb-registry-model/production-models:v0")
    assert linked.id == artifact.id
    assert tree(linked.download(root="linked")) == {"weights.bin": b"v0 weights"}
    assert api.artifact(f"{entity}/{project}/my-model:v0").id == artifact.id


def test_link_an_artifact_version_outside_the_context_of_a_run() -> None:
    write("a.bin", b"first")
    write("b.bin", b"second")
    for local in ("a.bin", "b.bin"):
        # Create an artifact object
        artifact = wandb.Artifact(name="dataset-for-registry", type="dataset")

        # Add the file to the artifact object.
        artifact.add_file(local_path=local, name="data.bin")

        # Specify the collection and registry to link the artifact to
        REGISTRY_NAME = "datasets"
        COLLECTION_NAME = "golden"
        target_path = f"wandb-registry-{REGISTRY_NAME}/{COLLECTION_NAME}"

        # Link the artifact to the collection
        artifact.link(target_path=target_path)

    api = wandb.Api()
    v0 = api.artifact("wandb-registry-datasets/golden:v0")
    v1 = api.artifact("wandb-registry-datasets/golden:latest")
    assert Path(v0.download(root="v0"), "data.bin").read_bytes() == b"first"
    assert Path(v1.download(root="v1"), "data.bin").read_bytes() == b"second"
    assert v1.id == api.artifact("dataset-for-registry:v1").id


def test_log_link_and_use_a_model() -> None:
    write("model.h5", b"mnist model")
    write("finetuned/config.json", "{}")
    write("finetuned/weights.bin", b"tuned")

    # Initialize a W&B run
    run = wandb.init(project="mnist-project", entity="charlie", config={"loss": "mse"})
    loss = run.config["loss"]
    assert loss == "mse"

    # Save model
    model_filename = "model.h5"
    local_filepath = "./"
    full_path = os.path.join(local_filepath, model_filename)

    # Log the model
    run.log_model(path=full_path, name="MNIST")

    # Log without a name: the base name of the path prefixed by the run id.
    run.log_model(path="finetuned")

    # Explicitly tell W&B to end the run.
    run.finish()

    api = wandb.Api()
    mnist = api.artifact("charlie/mnist-project/MNIST:latest")
    assert mnist.type == "model"
    assert paths(mnist) == ["model.h5"]
    unnamed = api.artifact(f"charlie/mnist-project/run-{run.id}-finetuned:v0")
    assert paths(unnamed) == ["config.json", "weights.bin"]
    assert mnist.logged_by().id == run.id

    run = wandb.init(entity="charlie", project="mnist-project")
    run.link_model(path="model.h5", registered_model_name="Fine-Tuned-Review-Autocompletion")
    run.finish()
    write("model.h5", b"mnist model, fine-tuned again")
    run = wandb.init(entity="charlie", project="mnist-project")
    run.link_model(path="model.h5", registered_model_name="Fine-Tuned-Review-Autocompletion")
    run.finish()

    registered = "charlie/model-registry/Fine-Tuned-Review-Autocompletion"
    assert Path(api.artifact(f"{registered}:v0").download("r0"), "model.h5").read_bytes() == (
        b"mnist model"
    )
    assert Path(api.artifact(f"{registered}:v1").download("r1"), "model.h5").read_bytes() == (
        b"mnist model, fine-tuned again"
    )
    assert api.artifact(f"{registered}:latest").id == api.artifact(f"{registered}:v1").id

    entity = "charlie"
    project = "mnist-project"
    alias = "latest"  # semantic nickname or identifier for the model version
    model_artifact_name = "MNIST"

    # Initialize a run
    run = wandb.init(entity=entity, project=project)
    # Access and download model. Returns path to downloaded artifact
    # (the page writes f"{entity/project/model_artifact_name}", a division of strings.)
    downloaded_model_path = run.use_model(name=f"{entity}/{project}/{model_artifact_name}:{alias}")
    run.finish()
    assert tree(downloaded_model_path) == {"model.h5": b"mnist model"}
    assert [r.id for r in mnist.used_by()] == [run.id]


# ----- Registry: organize versions with tags ---------------------------------------------


def test_tags_on_artifact_versions() -> None:
    for i in range(3):
        artifact = wandb.Artifact("zoo-dataset-tensors", "dataset")
        artifact.add_file(write(f"t{i}.npy", f"tensor {i}"), name="t.npy")
        artifact.link(target_path="wandb-registry-datasets/zoo")

    ARTIFACT_TYPE = "dataset"
    REGISTRY_NAME = "datasets"
    COLLECTION_NAME = "zoo"
    VERSION = "0"

    artifact_name = f"wandb-registry-{REGISTRY_NAME}/{COLLECTION_NAME}:v{VERSION}"

    artifact = wandb.Api().artifact(name=artifact_name, type=ARTIFACT_TYPE)
    artifact.tags = ["tag2"]  # Provide one or more tags in a list
    artifact.save()
    assert wandb.Api().artifact(artifact_name).tags == ["tag2"]

    VERSION = "1"
    with wandb.init(entity="local", project="uncategorized") as run:
        artifact_name = f"wandb-registry-{REGISTRY_NAME}/{COLLECTION_NAME}:v{VERSION}"

        artifact = run.use_artifact(artifact_or_name=artifact_name)
        artifact.tags = ["tag2"]  # Provide one or more tags in a list
        artifact.save()

    tags_to_delete = ["other-tag"]
    artifact.tags = [*artifact.tags, "new-tag", "other-tag"]
    artifact.tags = artifact.tags + ["new-tag", "other-tag"]  # noqa: RUF005 - as the page
    artifact.tags = set(artifact.tags) - set(tags_to_delete)
    assert sorted(artifact.tags) == ["new-tag", "tag2"]
    artifact.tags += ["ready-for-review", "other-tag"]
    artifact.tags.remove("other-tag")
    artifact.save()
    print(artifact.tags)

    api = wandb.Api()
    tagged_artifact_versions = api.artifacts(
        type_name="dataset", name="zoo-dataset-tensors", tags=["tag2", "ready-for-review"]
    )
    for artifact_version in tagged_artifact_versions:
        print(artifact_version.tags)
    assert [a.version for a in tagged_artifact_versions] == ["v1"]
    assert sorted(tagged_artifact_versions[0].tags) == ["new-tag", "ready-for-review", "tag2"]
    assert [a.version for a in api.artifacts("dataset", "zoo-dataset-tensors", tags=["tag2"])] == [
        "v0",
        "v1",
    ]
    assert api.artifact("zoo-dataset-tensors:v2").tags == []

    artifact.tags = []  # deletes all tags
    artifact.save()
    assert api.artifact("zoo-dataset-tensors:v1").tags == []


# ----- Public API: listing, files, checkout and verify -----------------------------------


def test_public_api_lists_collections_types_versions_and_files() -> None:
    make_root_directory()
    with wandb.init(project="listing") as run:
        data = wandb.Artifact("images", "dataset")
        data.add_dir("images")
        run.log_artifact(data)
        model = wandb.Artifact("cnn", "model")
        model.add_file("model.h5")
        run.log_artifact(model)
        data2 = wandb.Artifact("images", "dataset")
        data2.add_dir("images")
        data2.add_file("hello.txt")
        run.log_artifact(data2)

    api = wandb.Api()
    assert sorted(t.name for t in api.artifact_types(project="listing")) == ["dataset", "model"]
    collections = api.artifact_collections(project_name="listing", type_name="dataset")
    assert [c.name for c in collections] == ["images"]
    assert [a.version for a in collections[0].artifacts()] == ["v0", "v1"]
    collection = api.artifact_collection(type_name="model", name="local/listing/cnn")
    assert collection.type == "model"
    assert [a.name for a in collection.artifacts()] == ["cnn:v0"]

    versions = api.artifacts(type_name="dataset", name="local/listing/images")
    assert [v.name for v in versions] == ["images:v0", "images:v1"]

    artifact = api.artifact("listing/images:v1", type="dataset")
    assert sorted(f.name for f in artifact.files()) == ["cat.png", "dog.png", "hello.txt"]
    assert [f.name for f in artifact.files(names=["dog.png"])] == ["dog.png"]
    assert artifact.file_count == 3
    assert artifact.size == sum(len(b) for b in tree("images").values()) + len(b"hello world\n")
    assert api.artifact_exists("listing/images:v1")
    assert not api.artifact_exists("listing/images:v2")
    assert not api.artifact_exists("listing/nothing")


def test_checkout_and_verify() -> None:
    make_root_directory()
    with wandb.init() as run:
        artifact = wandb.Artifact("images", "dataset")
        artifact.add_dir("images")
        run.log_artifact(artifact)

    artifact = wandb.Api().artifact("images:latest")
    root = artifact.download()
    artifact.verify(root)
    write(os.path.join(root, "extra.txt"), "not in the artifact")
    with pytest.raises(ValueError):
        artifact.verify(root)

    root = artifact.checkout()
    assert tree(root) == {"cat.png": b"\x89PNG cat", "dog.png": b"\x89PNG dog"}
    artifact.verify()

    Path(root, "cat.png").write_bytes(b"edited")
    with pytest.raises(ValueError):
        artifact.verify()
