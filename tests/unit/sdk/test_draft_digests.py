"""The blob digests of a draft's manifest (kept raw, never parsed back from base64) must be
what parsing its entries gives."""

from __future__ import annotations

from pathlib import Path

import pytest

import soko
from soko.core.manifest import Manifest

pytestmark = pytest.mark.usefixtures("soko_env")


def parsed(manifest: Manifest) -> frozenset[object]:
    """The blob digests of a copy of *manifest* that knows nothing but its entries."""
    return Manifest.of(list(manifest), manifest.algorithm).blob_digests()


@pytest.mark.parametrize("algorithm", ["MD5", "XXH128"])
def test_known_digests_match_the_entries_after_every_kind_of_edit(
    tmp_path: Path, algorithm: str
) -> None:
    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    for name in ("a", "b", "sub/c", "sub/d"):
        (folder / name).write_text(f"content of {name}")
    other = tmp_path / "other.txt"
    other.write_text("other")
    artifact = soko.Artifact("edited", "dataset", digest_algorithm=algorithm)
    artifact.add_dir(str(folder))
    artifact.add_file(str(other), name="a", overwrite=True)  # replaces a's bytes
    artifact.remove("sub/d")
    artifact.remove("b")
    artifact.add_reference(other.as_uri(), name="b")  # a stored path becomes a reference
    with artifact.new_file("made.txt") as handle:
        handle.write("made")
    assert artifact._draft is not None
    manifest = artifact._draft.build()
    assert manifest.blob_digests() == parsed(manifest)
    assert len(manifest.blob_digests()) == 3  # a (other), sub/c, made.txt


def test_a_draft_of_a_logged_version_parses_what_it_inherited(tmp_path: Path) -> None:
    (tmp_path / "x.txt").write_text("x")
    with soko.init(project="p") as run:
        first = soko.Artifact("inherit", "dataset")
        first.add_file(str(tmp_path / "x.txt"))
        run.log_artifact(first).wait()
    draft = first.new_draft()
    (tmp_path / "y.txt").write_text("y")
    draft.add_file(str(tmp_path / "y.txt"))
    assert draft._draft is not None
    manifest = draft._draft.build()
    assert manifest.blob_digests() == parsed(manifest)
    assert len(manifest.blob_digests()) == 2
