"""Tables and images on every backend: logged in one run, read back with ``get`` in
another, equal to what was logged (numpy and pillow come with the ``media`` extra)."""

from __future__ import annotations

import numpy as np
from backend_suite import Backend

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
