"""The type of numpy arrays (and of nested lists standing for them).

numpy is optional and never imported here: an array can only exist once some code has
imported numpy. It imports nothing from soko but :mod:`soko.sdk.data_types.base`,
:mod:`.core` and :mod:`.structured`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from soko.sdk.data_types.base import Writer, numpy_or_none
from soko.sdk.data_types.dtypes.core import InvalidType, Type, TypeRegistry
from soko.sdk.data_types.dtypes.structured import ListType


def is_numpy_array(value: Any) -> bool:
    np = numpy_or_none()
    return np is not None and isinstance(value, np.ndarray)


class NDArrayType(Type):
    """A numpy array of one shape; large ones are stored beside the table as ``.npz``."""

    name = "ndarray"
    # Its own list: numpy's registration extends it (not the list of the base class).
    types: ClassVar[list[type]] = []
    numpy_names = ("ndarray",)

    def __init__(
        self, shape: Sequence[int], serialization_path: dict[str, str] | None = None
    ) -> None:
        super().__init__()
        self.params["shape"] = list(shape)
        self._serialization_path = serialization_path

    @classmethod
    def from_obj(cls, py_obj: Any = None) -> Type:
        if is_numpy_array(py_obj):
            return cls(py_obj.shape)
        if isinstance(py_obj, list):
            shape: list[int] = []
            target: Any = py_obj
            # An empty list ends the shape: it has no first element to look into.
            while isinstance(target, list):
                shape.append(len(target))
                if not target:
                    break
                target = target[0]
            return cls(shape)
        raise TypeError(
            f"NDArrayType.from_obj expects py_obj to be ndarray or list, found {py_obj.__class__}"
        )

    def assign_type(self, wb_type: Type) -> Type:
        if isinstance(wb_type, NDArrayType) and self.params["shape"] == wb_type.params["shape"]:
            return self
        if isinstance(wb_type, ListType):
            return self
        return InvalidType()

    def assign(self, py_obj: Any = None) -> Type:
        if is_numpy_array(py_obj) or isinstance(py_obj, list):
            return self.assign_type(self.from_obj(py_obj))
        return InvalidType()

    def to_json(self, writer: Writer | None = None) -> dict[str, Any]:
        return {
            "wb_type": self.name,
            "params": {
                "shape": self.params["shape"],
                "serialization_path": self._serialization_path,
            },
        }

    @property
    def serialization_path(self) -> dict[str, str] | None:
        return self._serialization_path

    @serialization_path.setter
    def serialization_path(self, value: dict[str, str] | None) -> None:
        self._serialization_path = value


TypeRegistry.add(NDArrayType)
