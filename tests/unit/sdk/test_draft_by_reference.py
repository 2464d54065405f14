"""On the embedded store a new draft of a large version keeps the version by reference:
the log asks for the added blobs only and stores the manifest spliced from the base's, with
its index; the commit still refuses a version naming a blob that is not stored, when the
base was deleted and collected in between."""

from __future__ import annotations

from pathlib import Path

import pytest

import soko
from soko.client import connect
from soko.client.local import LocalBackend
from soko.core.digests import Digest
from soko.core.layered import LayeredManifest
from soko.core.manifest import Manifest
from soko.errors import NotFoundError
from soko.service import pages
from soko.service.gc import collect_garbage

pytestmark = pytest.mark.usefixtures("soko_env")


@pytest.fixture(autouse=True)
def by_reference(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("soko.sdk.artifact.BASE_BY_REFERENCE_AT", 1)


def _log_base(tmp_path: Path) -> soko.Artifact:
    folder = tmp_path / "base"
    for i in range(40):
        (folder / f"d{i % 4}").mkdir(parents=True, exist_ok=True)
        (folder / f"d{i % 4}" / f"f{i}.txt").write_text(f"file {i}")
    with soko.init() as run:
        base = soko.Artifact("big", "dataset")
        base.add_dir(str(folder))
        run.log_artifact(base)
    return base


def test_the_log_asks_for_the_added_blobs_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _log_base(tmp_path)
    (tmp_path / "new.txt").write_text("new")
    asked: list[set[Digest]] = []
    missing = LocalBackend.missing_blobs

    def spy(self: LocalBackend, digests: object, **kw: object) -> set[Digest]:
        asked.append(set(digests))  # type: ignore[call-overload]
        return missing(self, digests, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(LocalBackend, "missing_blobs", spy)
    with soko.init() as run:
        draft = run.use_artifact("big:latest").new_draft()
        draft.add_file(str(tmp_path / "new.txt"), name="d1/new.txt")
        draft.remove("d2")
        assert draft._draft is not None
        manifest = draft._draft.build()
        assert isinstance(manifest, LayeredManifest)
        run.log_artifact(draft)
    assert asked and all(len(digests) == 1 for digests in asked)

    backend = connect.get_backend()
    assert isinstance(backend, LocalBackend)
    record = soko.Api().artifact("big:v1")._record
    assert record is not None and record.manifest_blob is not None
    stored = backend.store.manifest_bytes(pages.ManifestRef.parse(record.manifest_blob))
    whole = Manifest.of(list(manifest.whole()), manifest.algorithm)
    assert stored == whole.to_bytes() and record.digest == whole.digest()
    assert record.file_count == 31
    # The index stored with it reads the same pages as one built from the bytes.
    first = pages.entries_page(backend.store, record.manifest_blob, prefix="d1/", limit=100)
    assert [e.path for e in first.entries] == sorted(
        e.path for e in whole if e.path.startswith("d1/")
    )


def test_a_base_deleted_before_the_commit_has_every_blob_checked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    base = _log_base(tmp_path)
    (tmp_path / "new.txt").write_text("new")
    draft = soko.Api().artifact("big:latest").new_draft()
    draft.add_file(str(tmp_path / "new.txt"), name="new.txt")
    soko.Api().artifact(f"big:{base.version}").delete()
    checked: list[int] = []
    whole = LayeredManifest.whole

    def spy(self: LayeredManifest) -> Manifest:
        checked.append(len(self))
        return whole(self)

    monkeypatch.setattr(LayeredManifest, "whole", spy)
    with soko.init() as run:
        run.log_artifact(draft)
    # No longer a committed version: its blobs may be collected, so every one is checked.
    assert checked == [41]
    assert soko.Api().artifact("big:latest").file_count == 41


def test_a_base_deleted_and_collected_fails_the_log(tmp_path: Path) -> None:
    base = _log_base(tmp_path)
    (tmp_path / "new.txt").write_text("new")
    draft = soko.Api().artifact("big:latest").new_draft()
    draft.add_file(str(tmp_path / "new.txt"), name="new.txt")
    soko.Api().artifact(f"big:{base.version}").delete()
    backend = connect.get_backend()
    assert isinstance(backend, LocalBackend)
    collect_garbage(backend.store, grace_seconds=0)
    with soko.init() as run, pytest.raises(NotFoundError, match="was made from"):
        run.log_artifact(draft)
