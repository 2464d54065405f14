"""Incremental artifacts on every backend (W&B's ``Artifact(name, type, incremental=True)``):
the logged version holds the latest version's entries with the draft's laid over them; a
collection without a version takes the draft as it is; the draft's metadata and
description are the version's own, as in W&B; distributed writers do the same."""

from __future__ import annotations

from pathlib import Path

import pytest
from backend_suite import Backend, files_below, write

import soko

NAME = "growing"


def incremental(files: dict[str, str], **fields: object) -> soko.Artifact:
    """An incremental draft of *files*, added from local files."""
    artifact = soko.Artifact(NAME, "dataset", incremental=True, **fields)  # type: ignore[arg-type]
    for path, content in files.items():
        artifact.add_file(str(write(Path("inc-src", path), content)), name=path)
    return artifact


def downloaded(selector: str) -> dict[str, bytes]:
    root = Path(f"root-{selector.replace(':', '-')}")
    return files_below(soko.Api().artifact(f"{NAME}:{selector}").download(root=str(root)))


def test_a_first_incremental_log_is_a_normal_first_version(backend: Backend) -> None:
    with soko.init() as run:
        artifact = incremental({"a.txt": "a"})
        run.log_artifact(artifact)
    assert (artifact.version, artifact.file_count) == ("v0", 1)
    assert artifact.incremental
    assert downloaded("latest") == {"a.txt": b"a"}


def test_added_files_join_the_latest_version_and_override_it(backend: Backend) -> None:
    backend.log(NAME, {"a.txt": "a", "b.txt": "b", "dir/c.txt": "c"})
    with soko.init() as run:
        artifact = incremental({"new.txt": "new", "b.txt": "b changed"})
        run.log_artifact(artifact)

    assert artifact.version == "v1"
    assert artifact.file_count == 4
    assert sorted(e.path for e in artifact.manifest) == ["a.txt", "b.txt", "dir/c.txt", "new.txt"]
    assert downloaded("latest") == {
        "a.txt": b"a",
        "b.txt": b"b changed",
        "dir/c.txt": b"c",
        "new.txt": b"new",
    }
    assert downloaded("v0") == {"a.txt": b"a", "b.txt": b"b", "dir/c.txt": b"c"}


def test_each_log_builds_on_the_version_latest_names_when_it_commits(backend: Backend) -> None:
    backend.log(NAME, {"a.txt": "a"})
    # Both drafts are made before either is logged: the second still keeps the first's file.
    first, second = incremental({"one.txt": "1"}), incremental({"two.txt": "2"})
    with soko.init() as run:
        run.log_artifact(first).wait()
        run.log_artifact(second).wait()
    assert (first.version, second.version) == ("v1", "v2")
    assert downloaded("v2") == {"a.txt": b"a", "one.txt": b"1", "two.txt": b"2"}


def test_remove_reaches_only_what_the_draft_added(backend: Backend) -> None:
    backend.log(NAME, {"a.txt": "a", "b.txt": "b"})
    with soko.init() as run:
        artifact = incremental({"c.txt": "c", "d.txt": "d"})
        # As in W&B, the draft holds only what it added: base entries are removed through
        # new_draft(), which holds them all.
        with pytest.raises(FileNotFoundError):
            artifact.remove("a.txt")
        artifact.remove("d.txt")
        run.log_artifact(artifact)
    assert downloaded("latest") == {"a.txt": b"a", "b.txt": b"b", "c.txt": b"c"}


def test_logging_what_latest_holds_already_makes_no_version(backend: Backend) -> None:
    first = backend.log(NAME, {"a.txt": "a"})
    with soko.init() as run:
        artifact = incremental({"a.txt": "a"})
        run.log_artifact(artifact, aliases=["again"])
    assert artifact.version == "v0" and artifact.id == first.id
    assert "again" in soko.Api().artifact(f"{NAME}:v0").aliases


def test_metadata_and_description_are_the_drafts_own(backend: Backend) -> None:
    backend.log(NAME, {"a.txt": "a"}, metadata={"rows": 1})
    with soko.init() as run:
        artifact = incremental({"b.txt": "b"}, metadata={"added": True}, description="more")
        run.log_artifact(artifact)
    read = soko.Api().artifact(f"{NAME}:v1")
    assert (read.metadata, read.description) == ({"added": True}, "more")


def test_references_join_the_latest_version(backend: Backend) -> None:
    target = write("outside/ref.txt", "referenced")
    with soko.init() as run:
        base = soko.Artifact(NAME, "dataset")
        base.add_reference(target.resolve().as_uri(), name="ref.txt")
        base.add_file(str(write("plain.txt", "plain")))
        run.log_artifact(base)
    other = write("outside/other.txt", "other")
    with soko.init() as run:
        artifact = soko.Artifact(NAME, "dataset", incremental=True)
        artifact.add_reference(other.resolve().as_uri(), name="other.txt")
        run.log_artifact(artifact)

    entries = {e.path: e.ref for e in soko.Api().artifact(f"{NAME}:v1").manifest}
    assert entries == {
        "ref.txt": target.resolve().as_uri(),
        "other.txt": other.resolve().as_uri(),
        "plain.txt": None,
    }
    assert downloaded("v1") == {
        "ref.txt": b"referenced",
        "other.txt": b"other",
        "plain.txt": b"plain",
    }


def test_distributed_writers_add_to_the_latest_version(backend: Backend) -> None:
    backend.log(NAME, {"a.txt": "a", "shared.txt": "old"})
    for w in range(2):
        with soko.init(group="g", job_type="writer") as run:
            run.upsert_artifact(incremental({f"w{w}.txt": f"writer {w}"})).wait()
    with soko.init(group="g", job_type="finisher") as run:
        finished = incremental({"shared.txt": "new"})
        run.finish_artifact(finished).wait()

    assert finished.version == "v1"
    assert downloaded("latest") == {
        "a.txt": b"a",
        "shared.txt": b"new",
        "w0.txt": b"writer 0",
        "w1.txt": b"writer 1",
    }
    assert downloaded("v0") == {"a.txt": b"a", "shared.txt": b"old"}
