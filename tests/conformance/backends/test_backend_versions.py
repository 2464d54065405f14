"""Versions on every backend: log and read back, the manifest the client built, dedup of
identical content, ``latest``, numbers never reused, type conflicts, and the errors a
missing artifact or a bad name raise."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from backend_suite import Backend, files_below, write

import soko
from soko.errors import ArtifactFinalizedError, NotFoundError, TypeConflictError, ValidationError


def test_log_and_read_back(backend: Backend) -> None:
    files = {f"small/{i:02d}.txt": f"file number {i}\n".encode() for i in range(40)}
    files["big/weights.bin"] = os.urandom(2 * 1024 * 1024 + 17)  # past the small-blob paths
    files["empty.txt"] = b""

    logged = backend.log("ds", files, aliases=["best"])

    assert (logged.version, logged.state, logged.type) == ("v0", "COMMITTED", "dataset")
    assert sorted(logged.aliases) == ["best", "latest"]
    read = soko.Api().artifact("ds:best")
    assert read.id == logged.id
    assert read.qualified_name == f"{backend.entity}/{backend.project}/ds:v0"
    assert (read.name, read.source_name, read.entity, read.project) == (
        "ds:v0",
        "ds:v0",
        backend.entity,
        backend.project,
    )
    assert (read.digest, read.size, read.file_count) == (
        logged.digest,
        sum(len(c) for c in files.values()),
        len(files),
    )
    assert sorted(e.path for e in read.manifest) == sorted(files)
    root = read.download(root="out")
    assert files_below(root) == files
    read.verify(root)


def test_every_backend_keeps_the_manifest_the_client_built(backend: Backend) -> None:
    write("file1.txt", "hello")
    md5 = soko.Artifact("spec-example", "dataset", digest_algorithm="MD5")
    md5.add_file("file1.txt")
    for name in ("a.bin", "d/b.bin"):
        write(Path("tree", name), name * 100)
    xxh = soko.Artifact("tree", "dataset")
    xxh.add_dir("tree")
    built = {a: (a.manifest.to_json(), a.manifest.digest()) for a in (md5, xxh)}
    with soko.init() as run:
        run.log_artifact(md5)
        run.log_artifact(xxh)

    # W&B's example: one entry file1.txt holding "hello".
    assert soko.Api().artifact("spec-example:v0").digest == "a00c2239f036fb656c1dcbf9a32d89b4"
    for artifact, (manifest, digest) in built.items():
        read = soko.Api().artifact(f"{artifact.collection_name}:latest")
        assert (read.manifest.to_json(), read.digest) == (manifest, digest)


def test_identical_content_makes_no_new_version_and_records_the_second_logger(
    backend: Backend,
) -> None:
    first = backend.log("data", {"a.txt": "alpha", "b/c.txt": "gamma"}, aliases=["raw"])
    first_run = first.logged_by()
    second = backend.log("data", {"a.txt": "alpha", "b/c.txt": "gamma"}, aliases=["again"])

    assert first.version == second.version == "v0"
    assert second.id == first.id
    versions = soko.Api().artifacts("dataset", "data")
    assert [v.version for v in versions] == ["v0"]
    assert sorted(versions[0].aliases) == ["again", "latest", "raw"]
    assert first.logged_by().id == first_run.id
    (second_run,) = [r for r in soko.Api().runs() if r.id != first_run.id]
    assert [a.id for a in second_run.logged_artifacts()] == [first.id]


def test_identical_content_of_an_older_version_moves_aliases_but_not_latest(
    backend: Backend,
) -> None:
    backend.log("data", {"a.txt": "one"})
    backend.log("data", {"a.txt": "two"}, aliases=["best"])
    again = backend.log("data", {"a.txt": "one"}, aliases=["old-again", "best"])

    assert again.version == "v0"
    api = soko.Api()
    assert api.artifact("data:latest").version == "v1"
    assert api.artifact("data:old-again").version == "v0"
    assert api.artifact("data:best").version == "v0"  # moved from v1
    assert [v.version for v in api.artifacts("dataset", "data")] == ["v0", "v1"]


def test_latest_is_always_the_newest_committed_version(backend: Backend) -> None:
    api = soko.Api()
    for i in range(4):
        backend.log("steps", {"s.txt": f"step {i}"})
        assert api.artifact("steps:latest").version == f"v{i}"

    api.artifact("steps:v3").delete()
    assert api.artifact("steps:latest").version == "v2"
    api.artifact("steps:v1").delete()
    assert api.artifact("steps:latest").version == "v2"
    backend.log("steps", {"s.txt": "step 4"})
    assert api.artifact("steps:latest").version == "v4"
    holders = [v.version for v in api.artifacts("dataset", "steps") if "latest" in v.aliases]
    assert holders == ["v4"]


def test_version_numbers_are_never_reused_after_delete(backend: Backend) -> None:
    api = soko.Api()
    backend.log("nums", {"n.txt": "zero"})
    backend.log("nums", {"n.txt": "one"})
    api.artifact("nums:v1").delete()
    api.artifact("nums:v0").delete()
    assert api.artifacts("dataset", "nums") == []

    assert backend.log("nums", {"n.txt": "one"}).version == "v2"  # the content of v1
    assert backend.log("nums", {"n.txt": "three"}).version == "v3"
    assert [v.version for v in api.artifacts("dataset", "nums")] == ["v2", "v3"]
    assert not api.artifact_exists("nums:v1")


def test_a_name_logged_under_another_type_is_a_type_conflict(backend: Backend) -> None:
    backend.log("cats", {"cat.png": b"meow"}, type="dataset")
    write("model.h5", b"weights")

    run = soko.init()
    artifact = soko.Artifact("cats", "model")
    artifact.add_file("model.h5")
    run.log_artifact(artifact)
    with pytest.raises(TypeConflictError, match="cats"):
        artifact.wait()
    with pytest.raises(TypeConflictError):
        run.finish()

    assert soko.Api().run(run.id).state == "failed"
    assert [v.version for v in soko.Api().artifacts("dataset", "cats")] == ["v0"]
    assert [t.name for t in soko.Api().artifact_types()] == ["dataset"]


def test_a_type_conflict_surfaces_from_finish_without_wait(backend: Backend) -> None:
    backend.log("cats", {"cat.png": b"meow"}, type="dataset")
    write("model.h5", b"weights")
    run = soko.init()
    artifact = soko.Artifact("cats", "model")
    artifact.add_file("model.h5")
    run.log_artifact(artifact)
    with pytest.raises(TypeConflictError):
        run.finish()
    assert soko.run is None


def test_artifact_exists(backend: Backend) -> None:
    backend.log("present", {"p.txt": "here"}, aliases=["best"])
    api = soko.Api()
    project, other = backend.project, Backend.unique("other")
    assert api.artifact_exists("present")
    assert api.artifact_exists(f"{project}/present:v0")
    assert api.artifact_exists(f"{project}/present:best")
    assert api.artifact_exists(f"{backend.entity}/{project}/present:latest")
    assert api.artifact_exists("present", type="dataset")
    assert not api.artifact_exists("present", type="model")
    assert not api.artifact_exists("present:v1")
    assert not api.artifact_exists("present:worst")
    assert not api.artifact_exists("absent")
    assert not api.artifact_exists(f"{other}/present")


def test_a_missing_artifact_raises_not_found_everywhere(backend: Backend) -> None:
    backend.log("there", {"t.txt": "t"})
    api = soko.Api()
    for missing in ("nothing", "nothing:v0", "there:v1", "there:no-such-alias"):
        with pytest.raises(NotFoundError):
            api.artifact(missing)
    with pytest.raises(NotFoundError):
        api.artifacts("dataset", "nothing")
    with pytest.raises(NotFoundError):
        api.run("no-such-run")
    with soko.init() as run, pytest.raises(NotFoundError):
        run.use_artifact("nothing:latest")


def test_a_bad_collection_name_is_a_validation_error(backend: Backend) -> None:
    for bad in ("a/b", "a:b", "with space", "x" * 129, ""):
        with pytest.raises(ValidationError):
            soko.Artifact(bad, "dataset")
    for bad in ("with space", "a/b/c/d", "name:"):
        with pytest.raises(ValidationError):
            soko.Api().artifact(bad)
    # A name merely too long names nothing, as W&B's server answers (not bad input).
    with pytest.raises(NotFoundError):
        soko.Api().artifact("x" * 129)


def test_bad_types_aliases_and_tags_are_validation_errors(backend: Backend) -> None:
    for bad_type in ("a/b", "a:b", "wandb-internal", ""):
        with pytest.raises(ValidationError):
            soko.Artifact("fine", bad_type)
    write("a.txt", "a")
    artifact = soko.Artifact("data", "dataset")
    artifact.add_file("a.txt")
    with soko.init() as run:
        for bad in (["v3"], ["a/b"], ["x:y"], [""]):
            with pytest.raises(ValidationError):
                run.log_artifact(artifact, aliases=bad)
        with pytest.raises(ValidationError):
            run.log_artifact(artifact, tags=["not/a-tag"])
        assert artifact.is_draft()
        assert not soko.Api().artifact_exists("data")
        run.log_artifact(artifact, aliases=["good"])
    assert artifact.version == "v0"
    assert sorted(artifact.aliases) == ["good", "latest"]


def test_a_path_leaving_the_artifact_is_refused_when_added(backend: Backend) -> None:
    write("f.txt", "content")
    write("dir/g.txt", "content")
    artifact = soko.Artifact("data", "dataset")
    for bad in ("../x", "/etc/x", "a/../../x", "a//b", "C:/x"):
        with pytest.raises(ValidationError):
            artifact.add_file("f.txt", name=bad)
        with pytest.raises(ValidationError):
            artifact.add_dir("dir", name=bad)
        with pytest.raises(ValidationError):
            artifact.add_reference(f"file://{Path('f.txt').resolve()}", name=bad)
        with pytest.raises(ValidationError), artifact.new_file(bad) as handle:
            handle.write("x")
    assert len(artifact.manifest) == 0


def test_a_logged_artifact_cannot_be_logged_again_but_its_draft_can(backend: Backend) -> None:
    artifact = backend.log("data", {"a.txt": "a"})
    with soko.init() as run, pytest.raises(ArtifactFinalizedError):
        run.log_artifact(artifact)
    with pytest.raises(ArtifactFinalizedError):
        artifact.add_file(str(write("b.txt", "b")))
    draft = artifact.new_draft()
    draft.add_file("b.txt")
    with soko.init() as run:
        run.log_artifact(draft)
    assert draft.version == "v1"
