"""``artifact.manifest`` as W&B's ArtifactManifest: a draft's manifest is edited in place,
a logged one refuses edits, and it stays the soko Manifest the rest of the code reads."""

from __future__ import annotations

from pathlib import Path

import pytest

import soko
from soko.core.manifest import Manifest
from soko.errors import ArtifactFinalizedError
from soko.sdk.artifacts.artifact_manifest import ArtifactManifest
from soko.sdk.artifacts.artifact_manifest_entry import ArtifactManifestEntry


def reference(path: str) -> ArtifactManifestEntry:
    return ArtifactManifestEntry(
        path=path, digest=f"https://e.com/{path}", ref=f"https://e.com/{path}"
    )


def test_a_drafts_manifest_shows_its_own_edits_and_the_drafts() -> None:
    artifact = soko.Artifact("data", "dataset")
    manifest = artifact.manifest
    manifest.add_entry(reference("a"))
    assert [e.path for e in manifest] == ["a"]
    assert artifact.get_entry("a").ref == "https://e.com/a"
    artifact.add_reference("https://e.com/b", name="b", checksum=False)
    manifest.add_entry(reference("c"))
    assert sorted(manifest.to_manifest_json()["contents"]) == ["a", "b", "c"]
    assert manifest.digest() == artifact.manifest.digest() == artifact.digest
    manifest.remove_entry(reference("b"))
    assert [e.path for e in artifact.manifest] == ["a", "c"]
    artifact.remove(artifact.manifest.entries["c"])
    assert list(artifact.manifest.entries) == ["a"]


def test_it_is_a_manifest_and_its_size_answers_both_ways(tmp_path: Path) -> None:
    (tmp_path / "f.txt").write_bytes(b"12345")
    artifact = soko.Artifact("data", "dataset")
    artifact.add_file(str(tmp_path / "f.txt"))
    manifest = artifact.manifest
    assert isinstance(manifest, Manifest)
    assert manifest.size == manifest.size() == 5
    assert manifest == Manifest.from_json(manifest.to_json())
    assert manifest.to_manifest_json() == manifest.to_json()


def test_a_manifest_of_no_draft_refuses_edits(tmp_path: Path) -> None:
    standalone = ArtifactManifest.from_manifest_json(
        {"version": 1, "storagePolicy": "wandb-storage-policy-v1", "contents": {}}
    )
    with pytest.raises(ArtifactFinalizedError):
        standalone.add_entry(reference("a"))
    with pytest.raises(ValueError, match="version 1"):
        ArtifactManifest.from_manifest_json({"version": 2, "contents": {}})

    finalized = soko.Artifact("data", "dataset")
    finalized.finalize()
    with pytest.raises(ArtifactFinalizedError):
        finalized.manifest.add_entry(reference("a"))


def test_an_entry_needs_a_digest_of_its_algorithm_unless_it_is_a_reference() -> None:
    artifact = soko.Artifact("data", "dataset", digest_algorithm="MD5")
    with pytest.raises(ValueError):
        artifact.manifest.add_entry(ArtifactManifestEntry(path="f", digest="not-base64!", size=1))
    assert len(artifact.manifest) == 0


def test_size_comes_from_the_file_only_when_not_given(tmp_path: Path) -> None:
    (tmp_path / "f.bin").write_bytes(b"abc")
    assert ArtifactManifestEntry("f", "d", local_path=str(tmp_path / "f.bin")).size == 3
    assert ArtifactManifestEntry("f", "d", size=7, local_path=str(tmp_path / "f.bin")).size == 7
    assert ArtifactManifestEntry("f", "d", local_path=tmp_path / "f.bin").local_path == str(  # type: ignore[arg-type]
        tmp_path / "f.bin"
    )
