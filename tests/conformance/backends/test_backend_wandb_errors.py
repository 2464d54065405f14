"""W&B's exceptions on every backend: a draft against a logged version, a reference gone
from its source, a name too long to exist, a finished run."""

from __future__ import annotations

import datetime
import logging
from pathlib import Path

import pytest
from backend_suite import Backend, files_below, write

import soko
from soko.errors import (
    ArtifactFinalizedError,
    ArtifactNotLoggedError,
    CommError,
    MissingReferenceError,
    NotFoundError,
    UsageError,
)


def test_a_draft_and_the_version_it_becomes(backend: Backend) -> None:
    write("files/a.txt", "alpha")
    write("files/b.txt", "beta")
    draft = soko.Artifact("data", "dataset")
    draft.add_dir("files")
    for read in (lambda: draft.file_count, lambda: draft.ttl, draft.files, draft.file):
        with pytest.raises(ArtifactNotLoggedError, match="used prior to logging artifact"):
            read()
    draft.ttl = datetime.timedelta(days=1)

    with soko.init() as run:
        run.log_artifact(draft)
    assert (draft.file_count, draft.ttl) == (2, datetime.timedelta(days=1))
    with pytest.raises(ArtifactFinalizedError, match=r"'Artifact\.add_file' used on logged"):
        draft.add_file("files/a.txt", name="c.txt")

    logged = soko.Api().artifact("data:latest")
    assert (logged.file_count, logged.ttl) == (2, datetime.timedelta(days=1))
    assert sorted(e.path for e in logged.files()) == ["a.txt", "b.txt"]
    assert (logged.source_entity, logged.source_project) == (backend.entity, backend.project)
    assert logged.json_encode()["sequenceName"] == "data"
    with pytest.raises(ArtifactFinalizedError, match=r"'Artifact\.remove' used on logged"):
        logged.remove("a.txt")
    assert logged.new_draft().is_draft()


def test_a_reference_gone_from_its_source(
    backend: Backend, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOKO_SILENT", "true")  # the warning goes to the logger
    mount = Path("mount").resolve()
    write(mount / "kept.csv", "1,2\n")
    write(mount / "gone.csv", "3,4\n")
    with soko.init() as run:
        artifact = soko.Artifact("refs", "dataset")
        artifact.add_reference(f"file://{mount}", name="data")
        run.log_artifact(artifact)
    (mount / "gone.csv").unlink()

    logged = soko.Api().artifact("refs:latest")
    with pytest.raises(FileNotFoundError, match=r"gone\.csv") as caught:
        logged.download(root="strict")
    assert isinstance(caught.value, MissingReferenceError)
    with caplog.at_level(logging.WARNING, logger="soko"):
        logged.download(root="lenient", allow_missing_references=True)
    assert files_below("lenient") == {"data/kept.csv": b"1,2\n"}
    assert [r.levelno for r in caplog.records] == [logging.WARNING]
    assert "Failed to find file at path" in caplog.records[0].getMessage()


def test_missing_and_over_long_names_are_not_found(backend: Backend) -> None:
    backend.log("data", {"a.txt": "alpha"})
    api = soko.Api()
    for name in ("absent:latest", "data:v7", "data:nope", "x" * 129, f"{'y' * 300}:v0"):
        with pytest.raises(CommError, match="not found") as caught:
            api.artifact(name)
        assert isinstance(caught.value, NotFoundError | ValueError), name
        assert not api.artifact_exists(name)
    with pytest.raises(CommError, match="type 'model' specified"):
        api.artifact("data:latest", type="model")


def test_a_finished_run_refuses_logs(backend: Backend) -> None:
    write("a.txt", "alpha")
    run = soko.init()
    run.finish()
    artifact = soko.Artifact("data", "dataset")
    artifact.add_file("a.txt")
    with pytest.raises(UsageError, match="is finished"):
        run.log_artifact(artifact)
    with pytest.raises(NotFoundError):
        soko.Api().artifact("data:latest")
