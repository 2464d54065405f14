"""policy="mutable" captures a file's bytes when it is added, as W&B's staging copy does."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

import soko
from soko.client import connect

pytestmark = pytest.mark.usefixtures("soko_env")


def test_checkpoint_loop_logs_each_state_of_an_overwritten_file(tmp_path: Path) -> None:
    model = tmp_path / "model.pt"
    with soko.init(project="p") as run:
        for epoch in range(3):
            model.write_text(f"weights after epoch {epoch}")
            artifact = soko.Artifact("model", "model")
            artifact.add_file(str(model))
            run.log_artifact(artifact)  # not waited for: the next epoch overwrites the file
    versions = soko.Api(overrides={"project": "p"}).artifacts("model", "model")
    contents = [Path(v.download(root=str(tmp_path / v.version))) / "model.pt" for v in versions]
    assert [p.read_text() for p in contents] == [f"weights after epoch {i}" for i in range(3)]


def test_adding_copies_nothing_and_logging_captures_before_returning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "data.bin"
    data.write_bytes(b"x" * 1000)
    artifact = soko.Artifact("captured", "dataset")
    artifact.add_file(str(data))
    backend = connect.get_backend()
    digest = artifact.manifest.get("data.bin").blob_digest()  # type: ignore[union-attr]
    assert backend.missing_blobs([digest]) == {digest}  # the draft only hashed the file
    run = soko.init(project="p")
    gate = threading.Event()
    original_commit = backend.commit

    def commit_later(**fields: object) -> object:
        gate.wait(timeout=30)
        return original_commit(**fields)  # type: ignore[arg-type]

    monkeypatch.setattr(backend, "commit", commit_later)
    run.log_artifact(artifact)
    assert backend.missing_blobs([digest]) == set()  # captured before log_artifact returned
    data.write_bytes(b"y" * 1000)  # the caller may overwrite at once
    gate.set()
    run.finish()
    root = artifact.download(root=str(tmp_path / "out"))
    assert (Path(root) / "data.bin").read_bytes() == b"x" * 1000


def test_a_file_changed_between_add_and_log_fails_the_log_call(tmp_path: Path) -> None:
    data = tmp_path / "data.bin"
    data.write_bytes(b"a" * 100)
    artifact = soko.Artifact("changed", "dataset")
    artifact.add_file(str(data))
    data.write_bytes(b"b" * 100)
    with soko.init(project="p") as run, pytest.raises(soko.errors.DigestMismatchError):
        run.log_artifact(artifact)
    assert not soko.Api(overrides={"project": "p"}).artifact_exists("changed:v0")


def test_immutable_file_changed_before_upload_fails_the_log_clearly(tmp_path: Path) -> None:
    data = tmp_path / "data.bin"
    data.write_bytes(b"a" * 100)
    artifact = soko.Artifact("unstaged", "dataset")
    artifact.add_file(str(data), policy="immutable")
    data.write_bytes(b"b" * 100)
    run = soko.init(project="p")
    run.log_artifact(artifact)
    with pytest.raises(soko.errors.DigestMismatchError, match="changed after it was added"):
        run.finish()
    assert not soko.Api(overrides={"project": "p"}).artifact_exists("unstaged:v0")


def test_captured_blob_swept_before_the_upload_is_uploaded_again_from_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "data.bin"
    data.write_bytes(b"z" * 2048)
    artifact = soko.Artifact("swept", "dataset")
    artifact.add_file(str(data))
    backend = connect.get_backend()
    digest = artifact.manifest.get("data.bin").blob_digest()  # type: ignore[union-attr]
    original_stage = backend.stage_files

    def stage_then_sweep(items: object, **kwargs: object) -> object:
        captured = original_stage(items, **kwargs)  # type: ignore[arg-type]
        backend.store.blobs.delete(digest)  # type: ignore[attr-defined]  # what gc would do
        return captured

    monkeypatch.setattr(backend, "stage_files", stage_then_sweep)
    with soko.init(project="p") as run:
        run.log_artifact(artifact).wait()
    assert backend.missing_blobs([digest]) == set()
    root = artifact.download(root=str(tmp_path / "out"))
    assert (Path(root) / "data.bin").read_bytes() == b"z" * 2048


def test_commit_finding_a_blob_swept_after_upload_uploads_again_and_retries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "data.bin"
    data.write_bytes(b"q" * 512)
    artifact = soko.Artifact("raced", "dataset")
    artifact.add_file(str(data), policy="immutable")
    backend = connect.get_backend()
    digest = artifact.manifest.get("data.bin").blob_digest()  # type: ignore[union-attr]
    original = backend.commit
    calls: list[int] = []

    def commit_after_a_sweep(**fields: object) -> object:
        calls.append(1)
        if len(calls) == 1:
            backend.store.blobs.delete(digest)  # type: ignore[attr-defined]
        return original(**fields)  # type: ignore[arg-type]

    monkeypatch.setattr(backend, "commit", commit_after_a_sweep)
    with soko.init(project="p") as run:
        run.log_artifact(artifact).wait()
    assert len(calls) == 2
    assert artifact.version == "v0"
    assert backend.missing_blobs([digest]) == set()
