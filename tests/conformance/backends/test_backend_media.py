"""Tables and images on every backend: logged in one run, read back with ``get`` in
another, equal to what was logged (numpy and pillow come with the ``media`` extra)."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import numpy as np
import pytest
from backend_suite import Backend, files_below, write
from PIL import Image as PILImage

import soko


def test_tables_and_images_round_trip(backend: Backend) -> None:
    pixels = np.random.default_rng(7).integers(0, 256, (6, 5, 3), dtype=np.uint8)
    image = soko.Image(pixels, caption="noise")
    table = soko.Table(
        columns=["id", "label", "score", "img"],
        data=[[0, "cat", 0.5, image], [1, None, float("nan"), None]],
    )
    with soko.init() as run:
        artifact = soko.Artifact("evals", "dataset")
        artifact.add(table, "results")
        artifact["cover"] = image
        run.log_artifact(artifact)

    with soko.init() as run:
        logged = run.use_artifact("evals:latest")
        got = logged.get("results")
        cover = logged["cover"]
    assert isinstance(got, soko.Table)
    assert got.columns == ["id", "label", "score", "img"]
    assert [row[:3] for row in got.data] == [[0, "cat", 0.5], [1, None, None]]
    assert got.data[0][3] == image
    assert got.data[1][3] is None
    assert isinstance(cover, soko.Image) and cover == image
    assert np.array_equal(np.asarray(cover.image), pixels)
    assert logged.get("missing") is None


def _md5_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()


def test_an_md5_artifact_of_overlays_logs_relogs_and_downloads(
    backend: Backend, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SOKO_DIGEST_ALGORITHM", "MD5")
    pixels = np.random.default_rng(3).integers(0, 256, (6, 8, 3), dtype=np.uint8)
    mask = np.random.default_rng(4).integers(0, 3, (6, 8), dtype=np.uint8)
    box = {"position": {"minX": 0.1, "maxX": 0.5, "minY": 0.2, "maxY": 0.6}, "class_id": 1}
    image = soko.Image(
        pixels,
        masks={"pred": {"mask_data": mask, "class_labels": {0: "a", 1: "b", 2: "c"}}},
        boxes={"pred": {"box_data": [box]}},
    )
    table = soko.Table(columns=["id", "img"], data=[[0, image], [1, soko.Image(pixels)]])
    notes = write(tmp_path / "notes.txt", "hello")

    def build() -> soko.Artifact:
        artifact = soko.Artifact("md5-media", "dataset")
        artifact.add_file(str(notes))
        artifact.add(table, "evals")
        return artifact

    with soko.init() as run:
        first = run.log_artifact(build())
    with soko.init() as run:
        again = run.log_artifact(build())
    assert again.version == first.version == "v0"
    assert first.digest_algorithm == "MD5"
    contents = first.manifest.to_json()["contents"]
    assert contents["notes.txt"]["digest"] == _md5_b64(b"hello")
    assert not any("extra" in entry for entry in contents.values())
    assert any(p.startswith("media/classes/") for p in contents)
    assert any(p.startswith("media/images/mask/") for p in contents)

    with soko.init() as run:
        logged = run.use_artifact("md5-media:latest")
        root = logged.download(str(tmp_path / "down"))
        logged.verify(root)
        got = logged.get("evals")
    files = files_below(root)
    for path, entry in contents.items():
        assert _md5_b64(files[path]) == entry["digest"], path
    stored = got.data[0][1]
    assert stored == image
    assert stored._masks is not None and stored._boxes is not None
    assert np.array_equal(np.asarray(PILImage.open(stored._masks["pred"]._path)), mask)

    with soko.init() as run:
        draft = logged.new_draft()
        draft.add_file(str(write(tmp_path / "more.txt", "more")))
        second = run.log_artifact(draft)
    assert second.version == "v1" and second.digest_algorithm == "MD5"
    assert second.get_entry("more.txt").digest == _md5_b64(b"more")
