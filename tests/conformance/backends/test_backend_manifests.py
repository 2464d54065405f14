"""W&B's manifest API on every backend: entries added with ``manifest.add_entry`` are logged
like added files (read from their ``local_path``, checked against the digest they give),
an entry taken from a logged artifact needs no file, and ``to_manifest_json()`` of the
logged version is the draft's."""

from __future__ import annotations

import base64
import hashlib

import pytest
from backend_suite import Backend, files_below, write

import soko
from soko.errors import DigestMismatchError
from soko.sdk.artifacts.artifact_manifest_entry import ArtifactManifestEntry


def md5_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()


def test_entries_added_to_the_manifest_are_logged(backend: Backend) -> None:
    source = backend.log("source", {"kept.txt": "kept"})
    local = write("local.bin", b"local bytes")
    with soko.init() as run:
        artifact = soko.Artifact("built", "dataset", digest_algorithm="MD5")
        artifact.manifest.add_entry(
            ArtifactManifestEntry(
                path="dir/local.bin", digest=md5_b64(b"local bytes"), local_path=str(local)
            )
        )
        # An entry of a logged version: its blob is stored already, no file needed.
        artifact.manifest.add_entry(source.get_entry("kept.txt"))
        drafted = artifact.manifest.to_manifest_json()
        run.log_artifact(artifact)

    read = soko.Api().artifact("built:latest")
    assert read.manifest.to_manifest_json() == drafted
    assert files_below(read.download(root="root")) == {
        "dir/local.bin": b"local bytes",
        "kept.txt": b"kept",
    }


def test_an_entry_whose_file_does_not_match_its_digest_fails_the_log(backend: Backend) -> None:
    local = write("local.bin", b"not what the digest says")
    with soko.init() as run:
        artifact = soko.Artifact("wrong", "dataset", digest_algorithm="MD5")
        artifact.manifest.add_entry(
            ArtifactManifestEntry(path="x.bin", digest=md5_b64(b"other"), local_path=str(local))
        )
        run.log_artifact(artifact)
        with pytest.raises(DigestMismatchError):
            artifact.wait()
        with pytest.raises(DigestMismatchError):
            run.finish()
    assert not soko.Api().artifact_exists("wrong:latest")
