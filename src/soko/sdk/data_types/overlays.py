"""What an image carries over its pixels, stored as W&B stores it: ``Classes``, ``ImageMask``
and ``BoundingBoxes2D`` (W&B's ``helper_types``), and the column type of class ids.

- :class:`Classes`: a class set ``[{"id", "name"}, ...]``, stored as its own entry
  ``<name>.classes.json`` that images (``media/classes/<md5>_cls.classes.json``) and typed
  columns (``media/cls.classes.json``) point at with a ``classes-file`` object.
- :class:`ImageMask`: a 2-D array of class ids rendered to a grey PNG (Pillow, as W&B), or
  a mask image file; stored under ``media/images/mask/``.
- :class:`BoundingBoxes2D`: a list of boxes, stored inline in the image's JSON.

Validation raises what W&B raises (``TypeError`` for a malformed box, mask or class label),
so code that catches W&B's errors catches soko's. numpy and Pillow load on first use.
"""

from __future__ import annotations

import hashlib
import numbers
import os
import secrets
from collections.abc import Sequence
from typing import Any, ClassVar

from soko.sdk.data_types import dtypes
from soko.sdk.data_types.base import Media, Reader, Writer, media_tmp_dir, require


class Classes(Media):
    """A class set: ``Classes([{"id": 0, "name": "cat"}, ...])``."""

    _log_type = "classes"

    def __init__(self, class_set: Sequence[dict[str, Any]]) -> None:
        super().__init__()
        for class_obj in class_set:
            if not isinstance(class_obj, dict) or "id" not in class_obj or "name" not in class_obj:
                raise TypeError(
                    f'Classes takes a list of {{"id": ..., "name": ...}} dicts, not {class_obj!r}'
                )
        self._class_set = class_set

    @classmethod
    def from_json(cls, json_obj: dict[str, Any], reader: Reader | None) -> Classes:
        return cls(json_obj.get("class_set") or [])

    def to_json(self, writer: Writer | None) -> dict[str, Any]:
        json_obj: dict[str, Any] = {} if writer is None else super().to_json(writer)
        json_obj["_type"] = Classes._log_type
        json_obj["class_set"] = self._class_set
        return json_obj

    def get_type(self) -> ClassesIdType:
        """The column type whose values are this set's ids (``table.cast(col, c.get_type())``)."""
        return ClassesIdType(self)

    def names(self) -> dict[Any, Any]:
        """Class id → name."""
        return {item["id"]: item["name"] for item in self._class_set}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Classes) and self._class_set == other._class_set

    __hash__ = Media.__hash__

    def __repr__(self) -> str:
        return f"<Classes {list(self._class_set)!r}>"


def classes_file(writer: Writer, classes: Classes, name: str) -> dict[str, Any]:
    """Store *classes* as the entry *name* (``.classes.json`` added) and point at it."""
    entry = writer.add(classes, name)
    return {"type": "classes-file", "path": entry.path, "digest": entry.digest}


def classes_entry_name(classes: Classes) -> str:
    """W&B's name for an image's class set: the MD5 of the set's Python ``str``."""
    digest = hashlib.md5(str(classes._class_set).encode("utf-8"), usedforsecurity=False)
    return f"media/classes/{digest.hexdigest()}_cls"


class ClassesIdType(dtypes.Type):
    """A column holding ids of one class set; stored with a link to the set's file."""

    name = "classesId"
    legacy_names: ClassVar[list[str]] = ["wandb.Classes_id"]
    types: ClassVar[list[type]] = [Classes]

    def __init__(self, classes_obj: Classes | None = None, valid_ids: Any = None) -> None:
        super().__init__()
        if classes_obj is None:
            if valid_ids is None:
                valid_ids = dtypes.UnionType()
            elif isinstance(valid_ids, list):
                valid_ids = dtypes.UnionType([dtypes.ConstType(item) for item in valid_ids])
            elif not isinstance(valid_ids, dtypes.UnionType):
                raise TypeError("valid_ids must be None, list, or UnionType")
            ids = [t.params["val"] for t in valid_ids.params["allowed_types"]]
            classes_obj = Classes([{"id": i, "name": str(i)} for i in ids])
        elif not isinstance(classes_obj, Classes):
            raise TypeError("classes_obj must be None or a soko.Classes")
        else:
            valid_ids = dtypes.UnionType(
                [dtypes.ConstType(item["id"]) for item in classes_obj._class_set]
            )
        self.classes_obj = classes_obj
        self.params["valid_ids"] = valid_ids

    def assign(self, py_obj: Any = None) -> dtypes.Type:
        return self.assign_type(dtypes.ConstType(py_obj))

    def assign_type(self, wb_type: dtypes.Type) -> dtypes.Type:
        valid = self.params["valid_ids"].assign_type(wb_type)
        return dtypes.InvalidType() if isinstance(valid, dtypes.InvalidType) else self

    @classmethod
    def from_obj(cls, py_obj: Any = None) -> dtypes.Type:
        return cls(py_obj)

    def to_json(self, writer: Writer | None = None) -> dict[str, Any]:
        json_dict = super().to_json(writer)
        if writer is not None:
            classes_obj = classes_file(writer, self.classes_obj, "media/cls")
        else:
            classes_obj = self.classes_obj.to_json(None)
        json_dict.setdefault("params", {})["classes_obj"] = classes_obj
        return json_dict

    @classmethod
    def from_json(cls, json_dict: dict[str, Any], reader: Reader | None = None) -> dtypes.Type:
        ref = json_dict.get("params", {}).get("classes_obj", {})
        if ref.get("type") == "classes-file":
            if reader is None:
                raise TypeError("a classes-file column type is read from an artifact")
            classes_obj = reader.get(ref["path"])
            if classes_obj is not None and not isinstance(classes_obj, Classes):
                raise TypeError(f"{ref['path']} does not hold a class set")
            return cls(classes_obj)
        return cls(Classes.from_json(ref, reader))


dtypes.TypeRegistry.add(ClassesIdType)


def _check_class_labels(val: dict[str, Any], what: str) -> None:
    for key, name in list(val["class_labels"].items()):
        if not isinstance(key, numbers.Number) or not isinstance(name, str):
            raise TypeError(f"Class labels must be a dictionary of numbers to {what}")


def _to_numpy(value: Any) -> Any:
    # torch tensors (and anything else with .cpu().numpy()) become arrays, as in W&B.
    if hasattr(value, "cpu") and hasattr(value, "numpy"):
        return value.cpu().numpy()
    return value


class ImageMask(Media):
    """A mask over an image: ``{"mask_data": 2-D array, "class_labels": {id: name}}`` or
    ``{"path": mask image file}``, under *key* (``"predictions"``, ``"ground_truth"``)."""

    _log_type = "mask"

    def __init__(self, val: dict[str, Any], key: str) -> None:
        super().__init__()
        self._key = key
        self._val: dict[str, Any] | None = None
        if "path" in val:
            self._set_file(os.fspath(val["path"]))
            return
        np = require("numpy", "soko.data_types.ImageMask")
        if "mask_data" not in val:
            # A KeyError, as W&B raises (it looks the key up before validating).
            raise KeyError(
                'mask_data: an image mask needs "mask_data" (a 2D array of class ids) or "path"'
            )
        val["mask_data"] = _to_numpy(val["mask_data"])
        if "class_labels" not in val:
            ids = np.unique(val["mask_data"]).astype(np.int32).tolist()
            val["class_labels"] = {c: f"class_{c}" for c in ids}
        data = val["mask_data"]
        if len(getattr(data, "shape", ())) != 2:
            raise TypeError("mask_data must be a 2D array")
        if not ((data >= 0).all() and (data <= 255).all()):
            raise TypeError("Mask data must be integers between 0 and 255")
        _check_class_labels(val, "strings")
        self._val = val
        pil_image = require("PIL.Image", "soko.data_types.ImageMask")
        extension = ".mask.png"
        tmp_path = os.path.join(media_tmp_dir(), secrets.token_hex(8) + extension)
        # W&B's exact calls (int8, then grey), so the PNG bytes and its name are the same.
        pil_image.fromarray(data.astype(np.int8)).convert("L").save(tmp_path, transparency=None)
        self._set_file(tmp_path, is_tmp=True, extension=extension)

    @property
    def class_labels(self) -> dict[Any, str]:
        """Class id → name, for a mask made from data (empty for a mask file)."""
        return dict(self._val["class_labels"]) if self._val is not None else {}

    @classmethod
    def get_media_subdir(cls) -> str:
        return "media/images/mask"

    @classmethod
    def type_name(cls) -> str:
        return cls._log_type

    @classmethod
    def from_json(cls, json_obj: dict[str, Any], reader: Reader) -> ImageMask:
        mask = cls({"path": reader.local_path(json_obj["path"])}, key="")
        mask._stored_path = json_obj["path"]
        return mask

    def __repr__(self) -> str:
        return f"<ImageMask {self._key!r} {self._path}>"


def _has_num(mapping: Any, key: str) -> bool:
    return key in mapping and isinstance(mapping[key], numbers.Number)


_POSITION_ERROR = (
    "Each box must contain a position with: middle, width, and height or minX, maxX, minY, maxY."
)


def _check_boxes(val: dict[str, Any]) -> None:
    if "class_labels" in val:
        _check_class_labels(val, "string")
    boxes = val["box_data"]
    if not isinstance(boxes, list):
        raise TypeError("Boxes must be a list")
    for box in boxes:
        position = box.get("position") if isinstance(box, dict) else None
        if not isinstance(position, dict):
            raise TypeError(_POSITION_ERROR)
        middle = position.get("middle")
        centred = (
            middle is not None
            and len(middle) == 2
            and _has_num(position, "width")
            and _has_num(position, "height")
        )
        if not centred and not all(_has_num(position, k) for k in ("minX", "maxX", "minY", "maxY")):
            raise TypeError(_POSITION_ERROR)
        if "scores" in box:
            if not isinstance(box["scores"], dict):
                raise TypeError("Box scores must be a dictionary")
            for name, score in box["scores"].items():
                if not isinstance(name, str):
                    raise TypeError("A score key must be a string")
                if not isinstance(score, numbers.Number):
                    raise TypeError("A score value must be a number")
        if "class_id" in box and not isinstance(box["class_id"], int):
            raise TypeError("A box's class_id must be an integer")
        if "box_caption" in box and not isinstance(box["box_caption"], str):
            raise TypeError("A box's caption must be a string")


class BoundingBoxes2D(Media):
    """Boxes over an image: ``{"box_data": [{"position": ..., "class_id": ...}, ...],
    "class_labels": {id: name}}`` under *key*. In an artifact the boxes are written inline,
    as the list W&B writes."""

    _log_type = "bounding-boxes"

    def __init__(self, val: dict[str, Any], key: str) -> None:
        super().__init__()
        for box in val.get("box_data", []) or []:
            middle = box.get("position", {}).get("middle") if isinstance(box, dict) else None
            if middle is not None and not isinstance(middle, list) and hasattr(middle, "tolist"):
                box["position"]["middle"] = middle.tolist()
        if "box_data" not in val:
            raise KeyError('box_data: bounding boxes need "box_data", a list of boxes')
        _check_boxes(val)
        self._val: list[dict[str, Any]] = val["box_data"]
        self._key = key
        if "class_labels" in val:
            self._class_labels: dict[Any, str] = val["class_labels"]
        else:
            # W&B's default names, from the sorted distinct ids (np.unique).
            ids = sorted({int(box["class_id"]) for box in self._val})
            self._class_labels = {c: f"class_{c}" for c in ids}

    @property
    def class_labels(self) -> dict[Any, str]:
        return dict(self._class_labels)

    @classmethod
    def type_name(cls) -> str:
        return "boxes2D"

    @classmethod
    def get_media_subdir(cls) -> str:
        return "media/metadata/boxes2D"

    def to_json(self, writer: Writer) -> list[dict[str, Any]]:  # type: ignore[override]
        # W&B writes the box list itself, with no "_type" (its UI reads that shape).
        return self._val

    @classmethod
    def from_json(cls, json_obj: Any, reader: Reader) -> BoundingBoxes2D:
        return cls({"box_data": json_obj}, "")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, BoundingBoxes2D) and self._val == other._val

    __hash__ = Media.__hash__

    def __repr__(self) -> str:
        return f"<BoundingBoxes2D {self._key!r} {len(self._val)} boxes>"
