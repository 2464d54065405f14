"""W&B's manifest API, called the same way on the `wandb` package and on soko, gives the
same answers: ``to_manifest_json()`` of the same files (byte for byte per entry, the same
top-level layout), ``add_entry``/``remove_entry`` of entries given explicitly (whose
digests are the caller's, so the two manifests agree byte for byte whatever algorithm
either would hash with), ``ArtifactManifestEntry(path, digest, local_path=...)``, the
lookups, ``from_manifest_json`` and the errors.

Incremental artifacts are compared as drafts only: offline, W&B cannot resolve the latest
version an incremental log builds on (its server does), so what the logged version holds
is checked on every soko backend instead (tests/conformance/backends/
test_backend_incremental.py), against W&B's rules as its client code states them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import wandb
from wandb.sdk.artifacts.artifact_manifest import ArtifactManifest as WandbManifest
from wandb.sdk.artifacts.artifact_manifest_entry import ArtifactManifestEntry as WandbEntry
from wandb_parity import assert_same_artifact, entry_bytes

import soko
from soko.sdk.artifacts.artifact_manifest import ArtifactManifest as SokoManifest
from soko.sdk.artifacts.artifact_manifest_entry import ArtifactManifestEntry as SokoEntry

pytestmark = pytest.mark.differential

MD5_OF_HELLO = "sZRqySSS0jR8YjW00mERhA=="  # the base64 MD5 of b"hello\n"


@pytest.fixture
def files(tmp_path: Path) -> Path:
    root = tmp_path / "files"
    (root / "sub").mkdir(parents=True)
    (root / "hello.txt").write_bytes(b"hello\n")
    (root / "sub" / "b.bin").write_bytes(bytes(range(256)) * 3)
    (root / "sub" / "empty").write_bytes(b"")
    return root


def both(algorithm: str = "MD5") -> tuple[Any, soko.Artifact]:
    return (
        wandb.Artifact("data", "dataset", digest_algorithm=algorithm),  # type: ignore[arg-type]
        soko.Artifact("data", "dataset", digest_algorithm=algorithm),
    )


def same_json(w_art: Any, s_art: soko.Artifact) -> None:
    """The two ``to_manifest_json()`` agree: the same layout, the same entries byte for
    byte, and the same JSON once keys are sorted (W&B keeps insertion order; soko writes
    entries in path order, which W&B reads the same)."""
    w_json, s_json = w_art.manifest.to_manifest_json(), s_art.manifest.to_manifest_json()
    assert (
        list(s_json)
        == list(w_json)
        == [
            "version",
            "storagePolicy",
            "storagePolicyConfig",
            "contents",
        ]
    )
    assert entry_bytes(s_json["contents"]) == entry_bytes(w_json["contents"])
    assert json.dumps(s_json, sort_keys=True) == json.dumps(w_json, sort_keys=True)
    assert s_art.manifest.digest() == w_art.manifest.digest()
    assert s_art.manifest.size() == w_art.manifest.size()
    assert len(s_art.manifest) == len(w_art.manifest)


@pytest.mark.parametrize("algorithm", ["MD5", "XXH128"])
def test_to_manifest_json_of_the_same_files(files: Path, algorithm: str) -> None:
    w_art, s_art = both(algorithm)
    for art in (w_art, s_art):
        art.add_dir(str(files), name="data")
        art.add_file(str(files / "hello.txt"), name="top.txt")
        art.add_reference("https://example.com/x.csv", name="remote.csv", checksum=False)
    same_json(w_art, s_art)
    assert_same_artifact(w_art, s_art)


def test_add_entry_with_explicit_digests_is_byte_for_byte(files: Path) -> None:
    w_art, s_art = both()
    entries: list[dict[str, Any]] = [
        {"path": "from/file.txt", "digest": MD5_OF_HELLO, "local_path": str(files / "hello.txt")},
        {
            "path": "bucket/key",
            "digest": "etag-1",
            "ref": "s3://bucket/key",
            "birth_artifact_id": "QXJ0aWZhY3Q6MQ==",
            "size": 3,
            "extra": {"etag": "etag-1", "versionID": "v7"},
        },
        {"path": "site/page", "digest": "https://e.com/p", "ref": "https://e.com/p"},
    ]
    for fields in entries:
        w_art.manifest.add_entry(WandbEntry(**fields))
        s_art.manifest.add_entry(SokoEntry(**fields))
    same_json(w_art, s_art)

    # The same path with the same digest is taken again; another digest needs overwrite.
    for art, make in ((w_art, WandbEntry), (s_art, SokoEntry)):
        art.manifest.add_entry(make(path="bucket/key", digest="etag-1", ref="s3://bucket/key"))
        with pytest.raises(ValueError):
            art.manifest.add_entry(make(path="site/page", digest="other", ref="https://e.com/q"))
        art.manifest.add_entry(
            make(path="site/page", digest="other", ref="https://e.com/q"), overwrite=True
        )
        with pytest.raises(ValueError):
            art.manifest.add_entry(make(path="../up", digest="d", ref="https://e.com/q"))
    same_json(w_art, s_art)


def test_remove_entry_and_the_lookups(files: Path) -> None:
    w_art, s_art = both()
    for art in (w_art, s_art):
        art.add_dir(str(files))
    for art, make in ((w_art, WandbEntry), (s_art, SokoEntry)):
        art.manifest.remove_entry(make(path="sub/empty", digest="ignored"))
        with pytest.raises(FileNotFoundError):
            art.manifest.remove_entry(make(path="sub/empty", digest="ignored"))
        with pytest.raises(FileNotFoundError):
            art.manifest.remove_entry(make(path="sub", digest="a folder is not an entry"))
    same_json(w_art, s_art)

    w_found = w_art.manifest.get_entry_by_path("hello.txt")
    s_found = s_art.manifest.get_entry_by_path("hello.txt")
    assert s_found is not None and w_found is not None
    assert (s_found.path, s_found.digest, s_found.size) == (
        w_found.path,
        w_found.digest,
        w_found.size,
    )
    assert s_art.manifest.get_entry_by_path("missing") is w_art.manifest.get_entry_by_path(
        "missing"
    )
    assert [e.path for e in s_art.manifest.get_entries_in_directory("sub")] == [
        e.path for e in w_art.manifest.get_entries_in_directory("sub")
    ]
    assert s_art.manifest.version() == w_art.manifest.version() == 1
    assert s_art.manifest.storage_policy.name() == w_art.manifest.storage_policy.name()
    assert s_art.manifest.storage_policy.config() == w_art.manifest.storage_policy.config()


def test_a_manifest_entry_made_directly(files: Path) -> None:
    local = str(files / "sub" / "b.bin")
    made = [make(path="b.bin", digest="d", local_path=local) for make in (WandbEntry, SokoEntry)]
    assert made[1].size == made[0].size == 768
    assert made[1].to_json() == made[0].to_json()
    reference = {"path": "r", "digest": "e", "ref": "s3://b/k", "birth_artifact_id": "QQ=="}
    assert SokoEntry(**reference).to_json() == WandbEntry(**reference).to_json()
    for make in (WandbEntry, SokoEntry):
        with pytest.raises(FileNotFoundError):
            make(path="x", digest="d", local_path=str(files / "no-such-file"))
        with pytest.raises(ValueError):
            make(path="x", digest="d", size=-1)


@pytest.mark.parametrize("algorithm", ["MD5", "XXH128"])
def test_from_manifest_json_reads_what_wandb_writes(files: Path, algorithm: str) -> None:
    w_art, _ = both(algorithm)
    w_art.add_dir(str(files))
    w_art.add_reference("https://example.com/x", name="x", checksum=False)
    written = w_art.manifest.to_manifest_json()
    read = SokoManifest.from_manifest_json(written, w_art.manifest.digest_algorithm)
    again = WandbManifest.from_manifest_json(written, w_art.manifest.digest_algorithm)
    assert json.dumps(read.to_manifest_json(), sort_keys=True) == json.dumps(
        again.to_manifest_json(), sort_keys=True
    )
    assert read.digest() == again.digest() == w_art.manifest.digest()


def test_an_incremental_draft_holds_only_what_it_added(files: Path) -> None:
    w_art = wandb.Artifact("data", "dataset", incremental=True)
    s_art = soko.Artifact("data", "dataset", incremental=True, digest_algorithm="MD5")
    for art in (w_art, s_art):
        assert art.incremental
        art.add_file(str(files / "hello.txt"))
        # A path of the version it will build on is not in the draft: nothing to remove.
        with pytest.raises(FileNotFoundError):
            art.remove("from-the-base.txt")
    same_json(w_art, s_art)
