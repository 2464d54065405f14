"""soko.Image: made from arrays, PIL images and paths; stored and read back on a draft."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage

import soko
from soko.errors import ValidationError


def pixels(shape: tuple[int, ...]) -> np.ndarray:
    return (np.arange(int(np.prod(shape))) % 251).astype(np.uint8).reshape(shape)


@pytest.mark.parametrize(
    ("shape", "mode"),
    [((4, 5), "L"), ((4, 5, 1), "L"), ((4, 5, 3), "RGB"), ((4, 5, 4), "RGBA")],
)
def test_from_array_guesses_the_mode(shape: tuple[int, ...], mode: str) -> None:
    image = soko.Image(pixels(shape))
    assert image.image.mode == mode
    assert (image._width, image._height) == (5, 4)
    assert image.format == "png"
    assert image.image.size == (5, 4)


def test_array_pixels_survive() -> None:
    data = pixels((3, 2, 3))
    image = soko.Image(data)
    assert np.array_equal(np.asarray(image.image), data)


def test_unsupported_shapes_and_formats_are_refused() -> None:
    with pytest.raises(ValidationError, match="Un-supported shape"):
        soko.Image(pixels((2, 2, 5)))
    with pytest.raises(ValidationError, match="file_type"):
        soko.Image(pixels((2, 2, 3)), file_type="gif")
    with pytest.raises(ValidationError, match="not dict"):
        soko.Image({"pixels": 1})
    with pytest.raises(KeyError, match="box_data"):
        soko.Image(pixels((2, 2, 3)), boxes={"b": {}})


def test_jpeg_drops_alpha() -> None:
    image = soko.Image(pixels((4, 4, 4)), file_type="jpg")
    assert image.format == "jpg"
    assert image.image.mode == "RGB"


def test_from_pil_and_from_another_image() -> None:
    pil = PILImage.fromarray(pixels((6, 7, 3)), mode="RGB")
    image = soko.Image(pil, caption="c")
    copy = soko.Image(image)
    assert copy == image
    assert copy._sha256 == image._sha256
    assert (copy._width, copy._height) == (7, 6)


def test_from_path(tmp_path: Path) -> None:
    path = tmp_path / "cat.png"
    PILImage.fromarray(pixels((3, 3, 3)), mode="RGB").save(path)
    image = soko.Image(str(path))
    assert image.format == "png"
    assert image._sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    with pytest.raises(ValidationError, match="not found"):
        soko.Image(str(tmp_path / "missing.png"))


def test_equality_compares_pixels_and_caption() -> None:
    assert soko.Image(pixels((3, 3, 3))) == soko.Image(pixels((3, 3, 3)))
    assert soko.Image(pixels((3, 3, 3))) != soko.Image(pixels((3, 3, 3)) + 1)
    assert soko.Image(pixels((3, 3, 3)), caption="a") != soko.Image(pixels((3, 3, 3)))


def test_image_from_data_is_named_by_its_digest() -> None:
    art = soko.Artifact("imgs", "dataset", digest_algorithm="MD5")
    image = soko.Image(pixels((4, 4, 3)), caption="four")
    entry = art.add(image, "img")
    assert entry.path == "img.image-file.json"
    stored = json.loads(Path(art.get_entry("img.image-file.json").local_path or "").read_text())
    png = art.get_entry(stored["path"])
    png_bytes = Path(png.local_path or "").read_bytes()
    assert stored["path"] == f"media/images/{hashlib.md5(png_bytes).hexdigest()[:20]}.png"
    assert stored == {
        "_type": "image-file",
        "caption": "four",
        "format": "png",
        "height": 4,
        "path": stored["path"],
        "sha256": hashlib.sha256(png_bytes).hexdigest(),
        "width": 4,
    }


def test_image_from_path_keeps_its_name_under_a_hash_folder(tmp_path: Path) -> None:
    path = tmp_path / "dog.png"
    PILImage.fromarray(pixels((2, 2, 3)), mode="RGB").save(path)
    art = soko.Artifact("imgs", "dataset")
    art.add(soko.Image(str(path)), "dog")
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    assert art.get_entry(f"media/images/{sha[:20]}/dog.png").local_path == str(path)


def test_round_trip_on_a_draft() -> None:
    art = soko.Artifact("imgs", "dataset")
    image = soko.Image(pixels((5, 3, 3)), caption="x", grouping=2)
    art["pic"] = image
    got = art["pic"]
    assert isinstance(got, soko.Image)
    assert got == image
    assert got._grouping == 2
    assert art.get("pic.image-file.json") == image
