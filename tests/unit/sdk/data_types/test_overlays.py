"""Masks, boxes and class sets on images, and class-id columns: built, stored, read back."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image as PILImage

import soko
from soko.data_types import BoundingBoxes2D, ImageMask

LABELS = {0: "bg", 1: "cat", 2: "dog"}


def pixels(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=shape, dtype=np.uint8)


def box(class_id: int, **scores: float) -> dict[str, Any]:
    item: dict[str, Any] = {
        "position": {"minX": 0.1, "maxX": 0.4, "minY": 0.2, "maxY": 0.3},
        "class_id": class_id,
    }
    if scores:
        item["scores"] = scores
    return item


def stored_json(art: soko.Artifact, path: str) -> Any:
    return json.loads(Path(art.get_entry(path).local_path or "").read_text())


def test_the_class_set_gathers_box_and_mask_labels_then_the_classes_given() -> None:
    mask = np.array([[0, 2], [2, 0]], dtype=np.uint8)
    image = soko.Image(
        pixels((4, 4, 3)),
        boxes={"b": {"box_data": [box(1), box(3)]}},
        masks={"m": {"mask_data": mask, "class_labels": LABELS}},
        classes=soko.Classes([{"id": 3, "name": "bird"}]),
    )
    assert image._classes is not None
    # Box defaults first (class_1, class_3), then the mask's names, then the classes given.
    assert image._classes._class_set == [
        {"id": 1, "name": "cat"}, {"id": 3, "name": "bird"},
        {"id": 0, "name": "bg"}, {"id": 2, "name": "dog"},
    ]  # fmt: skip


def test_a_copy_keeps_the_picture_and_classes_but_not_the_layers() -> None:
    original = soko.Image(pixels((4, 4, 3)), boxes={"b": {"box_data": [box(1)]}})
    copy = soko.Image(original, caption="copy")
    assert copy._classes == original._classes
    assert copy._boxes is None and copy._masks is None
    assert copy == soko.Image(original)


def test_an_image_and_its_layers_round_trip_through_an_artifact() -> None:
    mask = np.array([[0, 1, 2], [2, 1, 0]], dtype=np.uint8)
    image = soko.Image(
        pixels((2, 3, 3)),
        masks={"truth": ImageMask({"mask_data": mask, "class_labels": LABELS}, "truth")},
        boxes={"pred": BoundingBoxes2D({"box_data": [box(2, acc=0.5)]}, "pred")},
    )
    art = soko.Artifact("a", "dataset")
    entry = art.add(image, "seg")
    assert entry.path == "seg.image-file.json"
    raw = stored_json(art, entry.path)
    assert raw["boxes"] == {"pred": [box(2, acc=0.5)]}
    assert raw["masks"]["truth"]["_type"] == "mask"
    assert raw["masks"]["truth"]["path"].startswith("media/images/mask/")
    assert raw["classes"]["type"] == "classes-file"
    assert raw["classes"]["digest"] == art.get_entry(raw["classes"]["path"]).digest

    got = art.get("seg")
    assert isinstance(got, soko.Image) and got == image
    assert got._masks is not None and got._boxes is not None
    assert got._boxes["pred"]._key == "pred" and got._boxes["pred"]._val == [box(2, acc=0.5)]
    assert np.array_equal(np.asarray(PILImage.open(got._masks["truth"]._path or "")), mask)


def test_a_table_column_widens_with_each_layer_after_plain_images() -> None:
    rows: list[list[Any]] = [[soko.Image(pixels((2, 2, 3), n))] for n in range(3)]
    rows.append([soko.Image(pixels((2, 2, 3)), boxes={"a": {"box_data": [box(1, iou=0.1)]}})])
    rows.append([soko.Image(pixels((2, 2, 3)), boxes={"b": {"box_data": [box(2)]}})])
    table = soko.Table(columns=["img"])
    for row in rows:
        table.add_data(*row)
    art = soko.Artifact("t", "dataset")
    art.add(table, "t")
    column = stored_json(art, "t.table.json")["column_types"]["params"]["type_map"]["img"]
    image_type = next(t for t in column["params"]["allowed_types"] if t["wb_type"] == "image-file")
    params = image_type["params"]
    assert params["box_layers"]["params"]["val"] == {"a": [1], "b": [2]}
    assert params["box_score_keys"]["params"]["val"] == ["iou"]
    assert params["class_map"]["params"]["val"] == {"1": "class_1", "2": "class_2"}


def test_a_class_id_column_refuses_an_unknown_id() -> None:
    classes = soko.Classes([{"id": i, "name": n} for i, n in LABELS.items()])
    table = soko.Table(columns=["label"], data=[[0], [2]])
    table.cast("label", classes.get_type())
    with pytest.raises(TypeError, match="incompatible"):
        table.add_data(7)
    art = soko.Artifact("t", "dataset")
    art.add(table, "labels")
    assert stored_json(art, "media/cls.classes.json") == {
        "_type": "classes",
        "class_set": [{"id": i, "name": n} for i, n in LABELS.items()],
    }
    got = art.get("labels")
    assert got.get_column("label") == [0, 2]
    with pytest.raises(TypeError, match="incompatible"):
        got.add_data(7)


def test_classes_need_an_id_and_a_name() -> None:
    with pytest.raises(TypeError, match="id"):
        soko.Classes([{"name": "x"}])
    with pytest.raises(TypeError, match="dicts or ImageMask"):
        soko.Image(pixels((2, 2, 3)), masks={"m": 3})


def test_class_sets_are_stored_once_per_distinct_set() -> None:
    classes = [{"id": 0, "name": "a"}]
    art = soko.Artifact("t", "dataset")
    table = soko.Table(
        columns=["img"],
        data=[[soko.Image(pixels((2, 2, 3), n), classes=classes)] for n in range(3)],
    )
    art.add(table, "t")
    art.add(soko.Classes(classes), "alone")
    paths = [e.path for e in art.manifest]
    assert len([p for p in paths if p.startswith("media/classes/")]) == 1
    assert "alone.classes.json" in paths
    assert art.get("alone") == soko.Classes(classes)
