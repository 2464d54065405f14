"""Distributed versions on every backend: runs of one group upsert into one pending version
and a finish commits it; the same path with other content is a conflict for the later
writer that loses nothing already upserted; an upsert after the finish starts the next."""

from __future__ import annotations

import pytest
from backend_suite import Backend, files_below

import soko
from soko.errors import ConflictError, NotFoundError

NAME = "shared"


def upserted(files: dict[str, str]) -> soko.Artifact:
    """A draft of *files*, made by soko itself (``new_file``)."""
    artifact = soko.Artifact(NAME, type="dataset")
    for path, content in files.items():
        with artifact.new_file(path, "w") as handle:
            handle.write(content)
    return artifact


def finish(
    group: str, files: dict[str, str] | None = None, *, aliases: list[str] | None = None
) -> soko.Artifact:
    """Commit the pending version of *group* from a run of its own, adding *files*."""
    with soko.init(group=group, job_type="finisher") as run:
        artifact = upserted(files or {})
        run.finish_artifact(artifact, aliases=aliases)
        artifact.wait()
    return artifact


def test_two_runs_of_one_group_upsert_then_one_finish_commits(backend: Backend) -> None:
    writers = []
    for w in range(2):
        with soko.init(group="g", job_type="writer") as run:
            part = upserted({f"w{w}/a.txt": f"writer {w}", "same.txt": "same bytes"})
            run.upsert_artifact(part).wait()
            assert part.state == "PENDING"
        writers.append(run.id)
    with pytest.raises(NotFoundError):
        soko.Api().artifact(f"{NAME}:latest")

    artifact = finish("g", aliases=["complete"])

    assert (artifact.version, artifact.file_count) == ("v0", 3)
    assert set(artifact.aliases) == {"latest", "complete"}
    read = soko.Api().artifact(f"{NAME}:complete")
    assert files_below(read.download(root="root")) == {
        "w0/a.txt": b"writer 0",
        "w1/a.txt": b"writer 1",
        "same.txt": b"same bytes",
    }
    for run_id in writers:
        assert [a.id for a in soko.Api().run(run_id).logged_artifacts()] == [artifact.id]


def test_a_conflict_reaches_the_later_writer_and_loses_nothing(backend: Backend) -> None:
    with soko.init(group="conflict") as run:
        run.upsert_artifact(upserted({"table.json": "early"})).wait()
    with soko.init(group="conflict") as run:
        late = upserted({"table.json": "late", "extra.json": "extra"})
        run.upsert_artifact(late)
        with pytest.raises(ConflictError, match=r"table\.json"):
            late.wait()
        with pytest.raises(ConflictError):
            run.finish()
    assert soko.Api().run(run.id).state == "failed"

    artifact = finish("conflict")
    read = soko.Api().artifact(f"{NAME}:{artifact.version}")
    assert files_below(read.download(root="root")) == {"table.json": b"early"}


def test_an_upsert_after_the_finish_starts_the_next_version(backend: Backend) -> None:
    with soko.init(group="late") as run:
        run.upsert_artifact(upserted({"a.txt": "a"}))
        finished = upserted({})
        run.finish_artifact(finished).wait()
        late = upserted({"b.txt": "b"})
        run.upsert_artifact(late).wait()

    assert (finished.version, [e.path for e in finished.manifest]) == ("v0", ["a.txt"])
    assert late.state == "PENDING" and late.id != finished.id
    assert soko.Api().artifact(f"{NAME}:latest").version == "v0"
    second = finish("late")
    assert second.version == "v1"
    assert [e.path for e in soko.Api().artifact(f"{NAME}:v1").manifest] == ["b.txt"]
    assert soko.Api().artifact(f"{NAME}:latest").version == "v1"


def test_finish_without_upserts_logs_its_own_entries(backend: Backend) -> None:
    artifact = finish("nothing-upserted", {"own.txt": "own"})
    assert (artifact.version, artifact.state, artifact.file_count) == ("v0", "COMMITTED", 1)
    read = soko.Api().artifact(f"{NAME}:v0")
    assert files_below(read.download(root="root")) == {"own.txt": b"own"}

    with soko.init() as run:
        with pytest.raises(TypeError, match="group or distributed_id"):
            run.upsert_artifact(soko.Artifact(NAME, type="dataset"))
        with pytest.raises(TypeError, match="group or distributed_id"):
            run.finish_artifact(soko.Artifact(NAME, type="dataset"))
        explicit = upserted({"explicit.txt": "x"})
        run.finish_artifact(explicit, distributed_id="explicit-id").wait()
    assert explicit.version == "v1"
