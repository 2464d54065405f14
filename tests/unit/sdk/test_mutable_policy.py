"""policy="mutable" captures a file's bytes when it is added, as W&B's staging copy does."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

import soko
from soko.client import connect
from soko.client.hashing import SERIAL_MAX
from soko.core.digests import Digest
from soko.core.requests import CommitRequest
from soko.sdk import draft as draft_module

pytestmark = pytest.mark.usefixtures("soko_env")

# Larger than what a draft keeps in memory from hashing: such a file is read again at log.
NOT_KEPT = SERIAL_MAX + 1


def add_data(
    tmp_path: Path, content: bytes, name: str, *, policy: str = "mutable"
) -> tuple[Path, soko.Artifact, Digest]:
    """``data.bin`` holding *content*, added to a new artifact *name*."""
    data = tmp_path / "data.bin"
    data.write_bytes(content)
    artifact = soko.Artifact(name, "dataset")
    artifact.add_file(str(data), policy=policy)
    digest = artifact.manifest.get("data.bin").blob_digest()  # type: ignore[union-attr]
    return data, artifact, digest


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


@pytest.mark.parametrize("size", [100, NOT_KEPT])
def test_adding_a_mutable_file_stores_it_at_once_and_later_edits_change_nothing(
    tmp_path: Path, size: int
) -> None:
    # The embedded store is the staging copy W&B makes at add time: small files go in
    # from the bytes kept by hashing, larger ones are copied and hashed in one pass.
    data, artifact, digest = add_data(tmp_path, b"x" * size, "captured")
    backend = connect.get_backend()
    assert backend.missing_blobs([digest]) == set()
    data.write_bytes(b"y" * size)  # the caller may overwrite at once
    with soko.init(project="p") as run:
        run.log_artifact(artifact).wait()
    root = artifact.download(root=str(tmp_path / "out"))
    assert (Path(root) / "data.bin").read_bytes() == b"x" * size


def test_immutable_files_are_only_hashed_when_added(tmp_path: Path) -> None:
    _, _, digest = add_data(tmp_path, b"i" * NOT_KEPT, "hashed", policy="immutable")
    assert connect.get_backend().missing_blobs([digest]) == {digest}


def test_a_file_not_stored_at_add_is_captured_before_log_returns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Files the add did not store (swept from the store in between, here) are captured by
    # log_artifact before it returns, so the caller may overwrite them at once.
    data, artifact, digest = add_data(tmp_path, b"x" * NOT_KEPT, "captured")
    backend = connect.get_backend()
    backend.store.blobs.delete(digest)  # type: ignore[attr-defined]  # what gc would do
    run = soko.init(project="p")
    gate = threading.Event()
    original_commit = backend.commit

    def commit_later(request: CommitRequest) -> object:
        gate.wait(timeout=30)
        return original_commit(request)

    monkeypatch.setattr(backend, "commit", commit_later)
    run.log_artifact(artifact)
    assert backend.missing_blobs([digest]) == set()  # captured before log_artifact returned
    data.write_bytes(b"y" * NOT_KEPT)
    gate.set()
    run.finish()
    root = artifact.download(root=str(tmp_path / "out"))
    assert (Path(root) / "data.bin").read_bytes() == b"x" * NOT_KEPT


def test_a_file_not_stored_at_add_and_changed_before_log_fails_the_log_call(
    tmp_path: Path,
) -> None:
    data, artifact, digest = add_data(tmp_path, b"a" * NOT_KEPT, "changed")
    connect.get_backend().store.blobs.delete(digest)  # type: ignore[attr-defined]
    data.write_bytes(b"b" * NOT_KEPT)
    with soko.init(project="p") as run, pytest.raises(soko.errors.DigestMismatchError):
        run.log_artifact(artifact)
    assert not soko.Api(overrides={"project": "p"}).artifact_exists("changed:v0")


@pytest.mark.parametrize("policy", ["mutable", "immutable"])
def test_a_small_file_changed_after_add_is_logged_as_it_was_hashed(
    tmp_path: Path, policy: str
) -> None:
    # The draft kept the bytes it hashed, so the log stores those, as W&B's staging copy
    # would: the version holds what add_file saw, never a mix of digest and other bytes.
    data = tmp_path / "data.bin"
    data.write_bytes(b"a" * 100)
    artifact = soko.Artifact("kept", "dataset")
    artifact.add_file(str(data), policy=policy)
    data.write_bytes(b"b" * 100)
    with soko.init(project="p") as run:
        run.log_artifact(artifact).wait()
    root = artifact.download(root=str(tmp_path / "out"))
    assert (Path(root) / "data.bin").read_bytes() == b"a" * 100


def test_immutable_large_file_changed_before_upload_fails_the_log_clearly(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data.bin"
    data.write_bytes(b"a" * NOT_KEPT)
    artifact = soko.Artifact("unstaged", "dataset")
    artifact.add_file(str(data), policy="immutable")
    data.write_bytes(b"b" * NOT_KEPT)
    run = soko.init(project="p")
    run.log_artifact(artifact)
    with pytest.raises(soko.errors.DigestMismatchError, match="changed after it was added"):
        run.finish()
    assert not soko.Api(overrides={"project": "p"}).artifact_exists("unstaged:v0")


def test_files_beyond_the_draft_memory_budget_are_read_again_at_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # policy="immutable": nothing is stored at add time, so the draft holds what it kept.
    monkeypatch.setattr(draft_module, "HELD_BYTES_MAX", 250)
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("a", "b", "c"):
        (folder / name).write_bytes(name.encode() * 100)
    artifact = soko.Artifact("budget", "dataset")
    artifact.add_dir(str(folder), policy="immutable")
    assert artifact._draft is not None
    held = set(artifact._draft.held.values())
    assert len(held) == 2  # two files fit in 250 bytes, the third would not
    (not_kept,) = [n for n in ("a", "b", "c") if n.encode() * 100 not in held]
    (folder / not_kept).write_bytes(b"changed")  # read again by the upload, and refused
    run = soko.init(project="p")
    run.log_artifact(artifact)
    with pytest.raises(soko.errors.DigestMismatchError, match="changed after it was added"):
        run.finish()


def test_a_draft_holds_no_bytes_the_store_took_at_add(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(40):
        (folder / f"f{i}").write_bytes(f"file {i}".encode())
    artifact = soko.Artifact("taken", "dataset")
    artifact.add_dir(str(folder))
    assert artifact._draft is not None and artifact._draft.held == {}
    backend = connect.get_backend()
    assert backend.missing_blobs(artifact.manifest.blob_digests()) == set()


def test_captured_blob_swept_before_the_upload_is_uploaded_again_from_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, artifact, digest = add_data(tmp_path, b"z" * NOT_KEPT, "swept")
    backend = connect.get_backend()
    backend.store.blobs.delete(digest)  # type: ignore[attr-defined]  # swept after the add
    original_store = backend.store_blobs
    staged: list[int] = []

    def stage_then_sweep(sources: Any, **kwargs: Any) -> Any:
        stored = original_store(sources, **kwargs)
        if kwargs.get("staging"):
            staged.append(1)
            backend.store.blobs.delete(digest)  # type: ignore[attr-defined]  # and again
        return stored

    monkeypatch.setattr(backend, "store_blobs", stage_then_sweep)
    with soko.init(project="p") as run:
        run.log_artifact(artifact).wait()
    assert staged == [1]
    assert backend.missing_blobs([digest]) == set()
    root = artifact.download(root=str(tmp_path / "out"))
    assert (Path(root) / "data.bin").read_bytes() == b"z" * NOT_KEPT


def test_commit_finding_a_blob_swept_after_upload_uploads_again_and_retries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, artifact, digest = add_data(tmp_path, b"q" * 512, "raced", policy="immutable")
    backend = connect.get_backend()
    original = backend.commit
    calls: list[int] = []

    def commit_after_a_sweep(request: CommitRequest) -> object:
        calls.append(1)
        if len(calls) == 1:
            backend.store.blobs.delete(digest)  # type: ignore[attr-defined]
        return original(request)

    monkeypatch.setattr(backend, "commit", commit_after_a_sweep)
    with soko.init(project="p") as run:
        run.log_artifact(artifact).wait()
    assert len(calls) == 2
    assert artifact.version == "v0"
    assert backend.missing_blobs([digest]) == set()


def test_a_store_that_cannot_open_leaves_adding_to_hashing_and_the_log_reports_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    not_a_folder = tmp_path / "store-is-a-file"
    not_a_folder.write_text("in the way")
    monkeypatch.setenv("SOKO_DIR", str(not_a_folder))
    connect.reset()
    data = tmp_path / "data.bin"
    data.write_bytes(b"d" * 100)
    artifact = soko.Artifact("nowhere", "dataset")
    artifact.add_file(str(data))  # hashed; nothing to store it in
    assert artifact.manifest.get("data.bin") is not None
    with pytest.raises(soko.errors.StoreError, match="store-is-a-file"):
        soko.init(project="p")


def test_files_added_during_a_run_are_captured_into_the_runs_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The capture goes where the log will: the current run's store, even when the
    # settings have moved on to another store since the run started.
    data = tmp_path / "data.bin"
    data.write_bytes(b"r" * NOT_KEPT)
    with soko.init(project="p") as run:
        monkeypatch.setenv("SOKO_DIR", str(tmp_path / "elsewhere"))
        artifact = soko.Artifact("in-run", "dataset")
        artifact.add_file(str(data))
        digest = artifact.manifest.get("data.bin").blob_digest()  # type: ignore[union-attr]
        assert run.log_queue.backend.missing_blobs([digest], entity="local", project="p") == set()
        assert connect.get_backend().missing_blobs([digest], entity="local", project="p") == {
            digest
        }
        data.write_bytes(b"s" * NOT_KEPT)  # captured at add: the log is not affected
        run.log_artifact(artifact).wait()
    root = artifact.download(root=str(tmp_path / "out"))
    assert (Path(root) / "data.bin").read_bytes() == b"r" * NOT_KEPT
