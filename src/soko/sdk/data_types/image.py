"""``soko.Image``: an image stored in an artifact as W&B stores ``wandb.Image``.

An image made from data (a numpy array or a PIL image) is rendered to PNG (or the
``file_type`` asked for) with the same Pillow calls as W&B, so the bytes, and so the
content-hashed name ``media/images/<digest>.png``, are the same. An image made from a path
keeps that file and is stored as ``media/images/<sha256[:20]>/<file name>``. Its JSON
(``_type: image-file``) and its column type (:class:`ImageFileType`) follow W&B's layout.

An image may carry masks, bounding boxes and a class set (:mod:`.overlays`): the class set
gathers the labels of every box and mask layer and the ``classes`` given, as W&B's does, and
is stored once per distinct set as ``media/classes/<md5>_cls.classes.json``.
"""

from __future__ import annotations

import os
import pathlib
import secrets
from typing import Any, ClassVar

from soko.errors import ValidationError
from soko.sdk.data_types import dtypes
from soko.sdk.data_types.base import Media, Reader, Writer, media_tmp_dir, require
from soko.sdk.data_types.overlays import (
    BoundingBoxes2D,
    Classes,
    ImageMask,
    classes_entry_name,
    classes_file,
)

_FORMATS = ("png", "jpg", "jpeg", "bmp")


class Image(Media):
    """An image from a path, a PIL image or a numpy array (HxW, HxWx1, x3 or x4)."""

    _image: Any

    MAX_ITEMS = 108
    MAX_DIMENSION = 65500
    _log_type = "image-file"

    def __init__(
        self,
        data_or_path: Any,
        mode: str | None = None,
        caption: str | None = None,
        grouping: int | None = None,
        classes: Any = None,
        boxes: Any = None,
        masks: Any = None,
        file_type: str | None = None,
    ) -> None:
        super().__init__(caption=caption)
        self.format: str | None = None
        self._grouping: int | None = None
        self._width: int | None = None
        self._height: int | None = None
        self._image: Any = None
        self._classes: Classes | None = None
        self._boxes: dict[str, BoundingBoxes2D] | None = None
        self._masks: dict[str, ImageMask] | None = None
        if isinstance(data_or_path, Image):
            self._copy_from(data_or_path)
        elif isinstance(data_or_path, str | pathlib.Path):
            path = str(data_or_path)
            if self.path_is_reference(path):
                self._init_from_reference(path)
            else:
                self._init_from_path(path)
        else:
            self._init_from_data(data_or_path, mode, file_type)
        if grouping is not None:
            self._grouping = grouping
        self._set_overlays(classes, boxes, masks)
        if self._image is not None:
            self._width, self._height = self._image.size
        # The file on disk is the image from now on; the decoded pixels are reloaded lazily.
        if self._path is not None:
            self._image = None

    def _copy_from(self, other: Image) -> None:
        for attribute in (
            "_grouping", "_caption", "_width", "_height", "_image", "_path", "_is_tmp",
            "_extension", "_sha256", "_size", "format", "_artifact_source", "_artifact_target",
            "_stored_path", "_classes",
        ):  # fmt: skip
            # Boxes and masks are not copied (as in W&B): only the picture and its classes.
            setattr(self, attribute, getattr(other, attribute))

    def _set_overlays(self, classes: Any, boxes: Any, masks: Any) -> None:
        # One class set for the image, as W&B builds it: box labels, then mask labels, then
        # the classes given; a later name for an id wins.
        labels: dict[Any, Any] = {}
        if boxes:
            if not isinstance(boxes, dict):
                raise ValueError('Images "boxes" argument must be a dictionary')
            self._boxes = {}
            for key, item in boxes.items():
                box = (
                    item
                    if isinstance(item, BoundingBoxes2D)
                    else _from_dict(BoundingBoxes2D, item, key, "boxes")
                )
                self._boxes[key] = box
                labels.update(box._class_labels)
        if masks:
            if not isinstance(masks, dict):
                raise ValueError('Images "masks" argument must be a dictionary')
            self._masks = {}
            for key, item in masks.items():
                mask = (
                    item
                    if isinstance(item, ImageMask)
                    else _from_dict(ImageMask, item, key, "masks")
                )
                self._masks[key] = mask
                labels.update(mask.class_labels)
        if classes is not None:
            class_set = classes._class_set if isinstance(classes, Classes) else classes
            labels.update({item["id"]: item["name"] for item in class_set})
        if labels:
            self._classes = Classes([{"id": key, "name": name} for key, name in labels.items()])

    def _init_from_path(self, path: str) -> None:
        pil_image = require("PIL.Image", "soko.Image")
        if not os.path.isfile(path):
            raise ValidationError(f"Image file not found: {path!r}")
        self._set_file(path, is_tmp=False)
        self._image = pil_image.open(path)
        self._image.load()
        self.format = os.path.splitext(path)[1][1:]

    def _init_from_reference(self, uri: str) -> None:
        import hashlib
        from urllib.parse import urlparse

        self._path = uri
        self._is_tmp = False
        self._sha256 = hashlib.sha256(uri.encode("utf-8")).hexdigest()
        self.format = urlparse(uri).path.split("/")[-1].split(".")[-1]

    def _init_from_data(self, data: Any, mode: str | None, file_type: str | None) -> None:
        pil_image = require("PIL.Image", "soko.Image")
        self.format = file_type or "png"
        if self.format not in _FORMATS:
            raise ValidationError(f"file_type must be one of {list(_FORMATS)}")
        if isinstance(data, pil_image.Image):
            self._image = data
        else:
            if hasattr(data, "numpy"):  # eager tensors
                data = data.numpy()
            if not hasattr(data, "ndim"):
                raise ValidationError(
                    "soko.Image takes a path, a PIL image or a numpy array, "
                    f"not {type(data).__name__}"
                )
            if data.ndim > 2:
                data = data.squeeze()
            mode = mode or self.guess_mode(data, file_type)
            np = require("numpy", "soko.Image from an array")
            self._image = pil_image.fromarray(data.astype(np.uint8)).convert(mode)
        tmp_path = os.path.join(media_tmp_dir(), f"{secrets.token_hex(8)}.{self.format}")
        self._image.save(tmp_path, transparency=None)
        self._set_file(tmp_path, is_tmp=True)

    @staticmethod
    def guess_mode(data: Any, file_type: str | None = None) -> str:
        """The PIL mode of an HxW(xC) array: L, RGB or RGBA."""
        channels = data.shape[-1]
        if data.ndim == 2 or channels == 1:
            return "L"
        if channels == 3:
            return "RGB"
        if channels == 4:
            # JPEG has no alpha channel.
            return "RGB" if file_type in ("jpg", "jpeg") else "RGBA"
        raise ValidationError(f"Un-supported shape for image conversion {list(data.shape)}")

    @classmethod
    def get_media_subdir(cls) -> str:
        return "media/images"

    @property
    def image(self) -> Any:
        """The decoded PIL image (loaded from the file on first use)."""
        if (
            self._image is None
            and self._path is not None
            and not self.path_is_reference(self._path)
        ):
            pil_image = require("PIL.Image", "soko.Image")
            self._image = pil_image.open(self._path)
            self._image.load()
        return self._image

    def to_json(self, writer: Writer) -> dict[str, Any]:
        json_dict = super().to_json(writer)
        json_dict["_type"] = Image._log_type
        json_dict["format"] = self.format
        if self._width is not None:
            json_dict["width"] = self._width
        if self._height is not None:
            json_dict["height"] = self._height
        if self._grouping:
            json_dict["grouping"] = self._grouping
        if (self._masks is not None or self._boxes is not None) and self._classes is None:
            raise ValueError(
                "classes must be passed to wandb.Image which have masks or bounding boxes "
                "when adding to artifacts"
            )
        if self._classes is not None:
            json_dict["classes"] = classes_file(
                writer, self._classes, classes_entry_name(self._classes)
            )
        if self._boxes:
            json_dict["boxes"] = {k: box.to_json(writer) for k, box in self._boxes.items()}
        if self._masks:
            json_dict["masks"] = {k: mask.to_json(writer) for k, mask in self._masks.items()}
        return json_dict

    @classmethod
    def from_json(cls, json_obj: dict[str, Any], reader: Reader) -> Image:
        classes = None
        if json_obj.get("classes") is not None:
            classes = reader.get(json_obj["classes"]["path"])
            if classes is not None and not isinstance(classes, Classes):
                raise ValidationError(f"{json_obj['classes']['path']} does not hold a class set")
        stored_masks: dict[str, Any] = json_obj.get("masks") or {}
        stored_boxes: dict[str, Any] = json_obj.get("boxes") or {}
        masks = {k: ImageMask.from_json(v, reader) for k, v in stored_masks.items()}
        boxes = {k: BoundingBoxes2D.from_json(v, reader) for k, v in stored_boxes.items()}
        for key, mask in masks.items():
            mask._key = key
        for key, box in boxes.items():
            box._key = key
        image = cls(
            reader.local_path(json_obj["path"]),
            caption=json_obj.get("caption"),
            grouping=json_obj.get("grouping"),
            classes=classes,
            boxes=boxes or None,
            masks=masks or None,
        )
        image._stored_path = json_obj["path"]
        return image

    def to_data_array(self) -> list[Any]:
        """The pixels as rows of values."""
        image = self.image
        if image is None:
            return []
        flat = getattr(image, "get_flattened_data", None) or image.getdata
        data = list(flat())
        rows = [data[i * image.width : (i + 1) * image.width] for i in range(image.height)]
        if self._path is not None:
            self._image = None
        return rows

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Image):
            return False
        if self.path_is_reference(self._path) and self.path_is_reference(other._path):
            return self._path == other._path
        mine, theirs = self.image, other.image
        return (
            self._grouping == other._grouping
            and self._caption == other._caption
            and self._width == other._width
            and self._height == other._height
            and _pixels(mine) == _pixels(theirs)
            and self._classes == other._classes
        )

    __hash__ = Media.__hash__

    def __repr__(self) -> str:
        return f"<Image {self._width}x{self._height} {self.format} {self._path}>"


def _from_dict(kind: Any, item: Any, key: str, what: str) -> Any:
    if not isinstance(item, dict):
        raise TypeError(
            f"Images {what!r} values must be dicts or {kind.__name__} objects, "
            f"not {type(item).__name__} (key {key!r})"
        )
    return kind(item, key)


def _pixels(image: Any) -> tuple[str, tuple[int, int], bytes] | None:
    return None if image is None else (image.mode, image.size, image.tobytes())


def _const_val(value: Any) -> Any:
    return value.params["val"] if isinstance(value, dtypes.ConstType) else value


def _string_maps(maps: dict[Any, Any]) -> dict[str, dict[str, Any]]:
    return {str(k): {str(cid): n for cid, n in v.items()} for k, v in maps.items()}


class ImageFileType(dtypes.Type):
    """The column type of images: the box/mask layers and class maps seen in the column."""

    name = "image-file"
    class_determined = True
    value_may_decide = True
    legacy_names: ClassVar[list[str]] = ["wandb.Image"]
    types: ClassVar[list[type]] = [Image]

    def __init__(
        self,
        box_layers: Any = None,
        box_score_keys: Any = None,
        mask_layers: Any = None,
        box_class_maps: Any = None,
        mask_class_maps: Any = None,
        class_map: Any = None,
        **_ignored: Any,
    ) -> None:
        super().__init__()
        box_layers = _const_val(box_layers) or {}
        mask_layers = _const_val(mask_layers) or {}
        box_score_keys = _const_val(box_score_keys) or []
        box_class_maps = _const_val(box_class_maps) or {}
        mask_class_maps = _const_val(mask_class_maps) or {}
        class_map = _const_val(class_map) or {}
        if not isinstance(box_layers, dict) or not isinstance(mask_layers, dict):
            raise TypeError("box_layers and mask_layers must be dicts")
        if not isinstance(box_score_keys, list | set):
            raise TypeError("box_score_keys must be a list or a set")
        self.params.update(
            {
                "box_layers": dtypes.ConstType({k: set(v) for k, v in box_layers.items()}),
                "box_score_keys": dtypes.ConstType(set(box_score_keys)),
                "mask_layers": dtypes.ConstType({k: set(v) for k, v in mask_layers.items()}),
                "box_class_maps": dtypes.ConstType(_string_maps(box_class_maps)),
                "mask_class_maps": dtypes.ConstType(_string_maps(mask_class_maps)),
                "class_map": dtypes.ConstType(class_map),
            }
        )

    def _vals(self) -> list[Any]:
        keys = ("box_layers", "box_score_keys", "mask_layers", "class_map",
                "box_class_maps", "mask_class_maps")  # fmt: skip
        return [self.params[k].params["val"] or ({} if k != "box_score_keys" else []) for k in keys]

    def assign_type(self, wb_type: dtypes.Type) -> dtypes.Type:
        if not isinstance(wb_type, ImageFileType):
            return dtypes.InvalidType()
        box_a, scores_a, mask_a, classes_a, box_maps_a, mask_maps_a = self._vals()
        box_b, scores_b, mask_b, classes_b, box_maps_b, mask_maps_b = wb_type._vals()

        def merge_layers(a: dict[Any, Any], b: dict[Any, Any]) -> dict[str, set[Any]]:
            return {str(k): set(list(a.get(k, [])) + list(b.get(k, []))) for k in set(a) | set(b)}

        def merge_maps(a: dict[Any, Any], b: dict[Any, Any]) -> dict[str, dict[str, Any]]:
            # Within a key, the union of class ids; this side's name wins a collision.
            return {str(k): {str(c): n for c, n in {**b.get(k, {}), **a.get(k, {})}.items()}
                    for k in a.keys() | b.keys()}  # fmt: skip

        return ImageFileType(
            merge_layers(box_a, box_b),
            set(list(scores_a) + list(scores_b)),
            merge_layers(mask_a, mask_b),
            merge_maps(box_maps_a, box_maps_b),
            merge_maps(mask_maps_a, mask_maps_b),
            {str(k): classes_a.get(k, classes_b.get(k)) for k in set(classes_a) | set(classes_b)},
        )

    @classmethod
    def from_obj(cls, py_obj: Any = None) -> dtypes.Type:
        if not isinstance(py_obj, Image):
            raise TypeError("py_obj must be a soko.Image")
        if not (py_obj._boxes or py_obj._masks or py_obj._classes):
            return cls()
        boxes = py_obj._boxes or {}
        masks = py_obj._masks or {}
        box_layers = {str(k): set(box._class_labels.keys()) for k, box in boxes.items()}
        box_score_keys = {
            score for box in boxes.values() for item in box._val for score in item.get("scores", {})
        }
        box_class_maps = {
            str(k): {str(c): n for c, n in box._class_labels.items()} for k, box in boxes.items()
        }
        mask_layers = {str(k): set(mask.class_labels.keys()) for k, mask in masks.items()}
        mask_class_maps = {
            str(k): {str(c): n for c, n in mask.class_labels.items()}
            for k, mask in masks.items()
            if mask._val is not None
        }
        class_set = (
            {str(item["id"]): item["name"] for item in py_obj._classes._class_set}
            if py_obj._classes
            else {}
        )
        return cls(
            box_layers, box_score_keys, mask_layers, box_class_maps, mask_class_maps, class_set
        )

    @staticmethod
    def decided_by_value(py_obj: Any) -> bool:
        return bool(py_obj._boxes or py_obj._masks or py_obj._classes)


dtypes.TypeRegistry.add(ImageFileType)
