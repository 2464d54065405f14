"""The column type system of tables: W&B's ``_dtypes``, ported rule for rule.

A Table infers a type per column from the values added to it and stores the result in its
JSON as ``column_types``. W&B's UI and SDK read those types, so the inference rules here
(what a value's type is, how two types merge, how unions are flattened and ordered) follow
``wandb/sdk/data_types/_dtypes.py`` exactly, quirks included: the bytes of a table file
depend on them. Types for media and tables register themselves from their own modules.

numpy is optional: its scalar and array classes are registered the first time a value's
class is looked up while numpy is imported (a numpy value cannot exist before that).
It imports nothing from soko but :mod:`soko.sdk.data_types.base`.
"""

from __future__ import annotations

import datetime
import math
import sys
from collections.abc import Sequence
from typing import Any, ClassVar

from soko.sdk.data_types.base import Reader, Writer, numpy_or_none


class TypeRegistry:
    """Maps type names (for JSON) and Python classes (for inference) to :class:`Type`."""

    _by_name: ClassVar[dict[str, type[Type]]] = {}
    _by_class: ClassVar[dict[type, type[Type]]] = {}
    _numpy_done: ClassVar[bool] = False

    @staticmethod
    def add(wb_type: type[Type]) -> None:
        TypeRegistry._by_name[wb_type.name] = wb_type
        for legacy in wb_type.legacy_names:
            TypeRegistry._by_name[legacy] = wb_type
        for py_class in wb_type.types:
            TypeRegistry._by_class[py_class] = wb_type

    @staticmethod
    def handler_for_class(py_class: type) -> type[Type] | None:
        handler = TypeRegistry._by_class.get(py_class)
        if handler is None and not TypeRegistry._numpy_done and "numpy" in sys.modules:
            _register_numpy()
            handler = TypeRegistry._by_class.get(py_class)
        return handler

    @staticmethod
    def type_of(py_obj: Any) -> Type:
        # NaN is a float but, as in dataframes, stands for a missing value.
        if py_obj.__class__ is float and math.isnan(py_obj):
            return NoneType()
        handler = TypeRegistry.handler_for_class(py_obj.__class__)
        if handler is not None:
            return handler.from_obj(py_obj)
        return PythonObjectType.from_obj(py_obj)

    @staticmethod
    def type_from_dict(json_dict: dict[str, Any], reader: Reader | None = None) -> Type:
        wb_type = json_dict.get("wb_type")
        if wb_type is None:
            raise TypeError("json_dict must contain `wb_type` key")
        handler = TypeRegistry._by_name.get(wb_type)
        if handler is None:
            # A type soko does not model (audio, video, …): kept verbatim, not rejected,
            # so that a W&B table holding such a column still loads and saves unchanged.
            return OpaqueType(json_dict)
        return handler.from_json(json_dict, reader)

    @staticmethod
    def type_from_dtype(dtype: Any) -> Type:
        if isinstance(dtype, Type):
            return dtype
        if isinstance(dtype, type) and issubclass(dtype, Type):
            return dtype()
        if isinstance(dtype, type):
            handler = TypeRegistry.handler_for_class(dtype)
            return handler() if handler is not None else PythonObjectType.from_obj(dtype)
        if isinstance(dtype, list):
            if len(dtype) == 0:
                return ListType()
            if len(dtype) == 1:
                return ListType(TypeRegistry.type_from_dtype(dtype[0]))
            return UnionType([TypeRegistry.type_from_dtype(d) for d in dtype])
        if isinstance(dtype, dict):
            return TypedDictType({k: TypeRegistry.type_from_dtype(v) for k, v in dtype.items()})
        return ConstType(dtype)


def _params_to_json(params: Any, writer: Writer | None) -> Any:
    if params.__class__ is dict:
        return {key: _params_to_json(params[key], writer) for key in params}
    if params.__class__ in (list, set, tuple, frozenset):
        return [_params_to_json(item, writer) for item in list(params)]
    if isinstance(params, Type):
        return params.to_json(writer)
    return params


def _json_to_params(json_obj: Any, reader: Reader | None) -> Any:
    if json_obj.__class__ is dict:
        if "wb_type" in json_obj:
            return TypeRegistry.type_from_dict(json_obj, reader)
        return {key: _json_to_params(json_obj[key], reader) for key in json_obj}
    if json_obj.__class__ is list:
        return [_json_to_params(item, reader) for item in json_obj]
    return json_obj


class Type:
    """The most general type; subclasses set a unique ``name`` used in JSON."""

    name: ClassVar[str] = ""
    legacy_names: ClassVar[list[str]] = []
    types: ClassVar[list[type]] = []
    # True when assigning a value to this type, and the type inferred from a value of a
    # class this type handles, depend on the value's class alone (see `row_signature`).
    class_determined: ClassVar[bool] = False

    def __init__(self, *_args: Any, **_kwargs: Any) -> None:
        self._params: dict[str, Any] = {}

    @property
    def params(self) -> dict[str, Any]:
        return self._params

    def assign(self, py_obj: Any = None) -> Type:
        """The type that results from adding *py_obj* to a column of this type."""
        return self.assign_type(TypeRegistry.type_of(py_obj))

    def assign_type(self, wb_type: Type) -> Type:
        if isinstance(wb_type, self.__class__) and self.params == wb_type.params:
            return self
        return InvalidType()

    def to_json(self, writer: Writer | None = None) -> dict[str, Any]:
        result: dict[str, Any] = {
            "wb_type": self.name,
            "params": _params_to_json(self.params, writer),
        }
        if result["params"] is None or result["params"] == {}:
            del result["params"]
        return result

    @classmethod
    def from_json(cls, json_dict: dict[str, Any], reader: Reader | None = None) -> Type:
        return cls(**_json_to_params(json_dict.get("params", {}), reader))

    @classmethod
    def from_obj(cls, py_obj: Any = None) -> Type:
        return cls()

    def explain(self, other: Any, depth: int = 0) -> str:
        """Why *other* cannot be assigned to this type (the caller knows it cannot)."""
        wbtype = TypeRegistry.type_of(other)
        gap = "\t" * depth
        if depth > 0:
            return f"{gap}{wbtype} not assignable to {self}"
        return f"{gap}{other} of type {wbtype} is not assignable to {self}"

    def __repr__(self) -> str:
        text = self.name.capitalize()
        if self.params:
            text += "(" + ", ".join(f"{k}:{v}" for k, v in self.params.items()) + ")"
        return text

    def __eq__(self, other: object) -> bool:
        return self is other or (
            isinstance(other, Type)
            and self.name == other.name
            and self.params.keys() == other.params.keys()
            and all(self.params[k] == other.params[k] for k in self.params)
        )

    __hash__ = None  # type: ignore[assignment]


class InvalidType(Type):
    """The result of an assignment that is not allowed."""

    name = "invalid"
    class_determined = True

    def assign_type(self, wb_type: Type) -> Type:
        return self


class AnyType(Type):
    """Anything but None (``allow_mixed_types=True``)."""

    name = "any"
    class_determined = True

    def assign_type(self, wb_type: Type) -> Type:
        return InvalidType() if isinstance(wb_type, NoneType | InvalidType) else self


class UnknownType(Type):
    """Not known yet: the first value assigned decides, except None."""

    name = "unknown"
    class_determined = True

    def assign_type(self, wb_type: Type) -> Type:
        return InvalidType() if isinstance(wb_type, NoneType) else wb_type


class NoneType(Type):
    name = "none"
    class_determined = True
    types: ClassVar[list[type]] = [type(None)]


class StringType(Type):
    name = "string"
    class_determined = True
    types: ClassVar[list[type]] = [str]


class NumberType(Type):
    name = "number"
    class_determined = True
    types: ClassVar[list[type]] = [int, float]


class TimestampType(Type):
    name = "timestamp"
    class_determined = True
    types: ClassVar[list[type]] = [datetime.datetime, datetime.date]


class BooleanType(Type):
    name = "boolean"
    class_determined = True
    types: ClassVar[list[type]] = [bool]


class PythonObjectType(Type):
    """The fallback type: remembers the class name of the value."""

    name = "pythonObject"
    class_determined = True
    legacy_names: ClassVar[list[str]] = ["object"]

    def __init__(self, class_name: str) -> None:
        super().__init__()
        self.params["class_name"] = class_name

    @classmethod
    def from_obj(cls, py_obj: Any = None) -> Type:
        return cls(py_obj.__class__.__name__)


class ConstType(Type):
    """A constant value (primitives, or a set of them)."""

    name = "const"

    def __init__(self, val: Any = None, is_set: bool | None = False) -> None:
        super().__init__()
        if is_set or isinstance(val, set):
            is_set = True
            assert isinstance(val, set | list)
            val = set(val)
        self.params.update({"val": val, "is_set": is_set})

    def assign(self, py_obj: Any = None) -> Type:
        return self.assign_type(ConstType(py_obj))

    @classmethod
    def from_obj(cls, py_obj: Any = None) -> Type:
        return cls(py_obj)

    def __repr__(self) -> str:
        return str(self.params["val"])


def _flatten_union_types(wb_types: Sequence[Type]) -> list[Type]:
    flat: list[Type] = []
    for allowed in wb_types:
        if isinstance(allowed, UnionType):
            flat.extend(_flatten_union_types(allowed.params["allowed_types"]))
        else:
            flat.append(allowed)
    return flat


def _union_assigner(allowed_types: list[Type], obj_or_type: Any, type_mode: bool) -> list[Type]:
    """Assign to the first member that accepts; else fill an Unknown member. [] if invalid."""
    resolved: list[Type] = []
    valid = False
    unknown_count = 0
    for allowed in allowed_types:
        if valid:
            resolved.append(allowed)
        elif isinstance(allowed, UnknownType):
            unknown_count += 1
        else:
            assigned = (
                allowed.assign_type(obj_or_type) if type_mode else allowed.assign(obj_or_type)
            )
            if isinstance(assigned, InvalidType):
                resolved.append(allowed)
            else:
                resolved.append(assigned)
                valid = True
    if not valid:
        if unknown_count == 0:
            return []
        new_type = obj_or_type if type_mode else UnknownType().assign(obj_or_type)
        if isinstance(new_type, InvalidType):
            return []
        resolved.append(new_type)
        unknown_count -= 1
    resolved.extend(UnknownType() for _ in range(unknown_count))
    resolved = _flatten_union_types(resolved)
    resolved.sort(key=str)
    return resolved


class UnionType(Type):
    """An "or" of types, flattened and ordered by their text."""

    name = "union"

    def __init__(self, allowed_types: list[Any] | None = None) -> None:
        super().__init__()
        assert allowed_types is None or allowed_types.__class__ is list
        wb_types = [TypeRegistry.type_from_dtype(dt) for dt in allowed_types or []]
        wb_types = _flatten_union_types(wb_types)
        wb_types.sort(key=str)
        self.params["allowed_types"] = wb_types

    def assign(self, py_obj: Any = None) -> Type:
        resolved = _union_assigner(self.params["allowed_types"], py_obj, type_mode=False)
        return self.__class__(resolved) if resolved else InvalidType()

    def assign_type(self, wb_type: Type) -> Type:
        assignees = wb_type.params["allowed_types"] if isinstance(wb_type, UnionType) else [wb_type]
        resolved: list[Type] = self.params["allowed_types"]
        for assignee in assignees:
            resolved = _union_assigner(resolved, assignee, type_mode=True)
            if not resolved:
                return InvalidType()
        return self.__class__(resolved)

    def explain(self, other: Any, depth: int = 0) -> str:
        text = super().explain(other, depth)
        for index, subtype in enumerate(self.params["allowed_types"]):
            if index > 0:
                text += "\n" + "\t" * depth + "and"
            text += "\n" + subtype.explain(other, depth=depth + 1)
        return text

    def __repr__(self) -> str:
        return " or ".join(str(t) for t in self.params["allowed_types"])


def OptionalType(dtype: Any) -> UnionType:
    """``dtype`` or None."""
    return UnionType([TypeRegistry.type_from_dtype(dtype), NoneType()])


class ListType(Type):
    """A list of one element type; ``length`` is kept while every list has the same."""

    name = "list"
    types: ClassVar[list[type]] = [list, tuple, set, frozenset]

    def __init__(self, element_type: Any = None, length: int | None = None) -> None:
        super().__init__()
        wb_type = (
            UnknownType() if element_type is None else TypeRegistry.type_from_dtype(element_type)
        )
        self.params.update({"element_type": wb_type, "length": length})

    @classmethod
    def from_obj(cls, py_obj: Any = None) -> Type:
        if py_obj is None or not hasattr(py_obj, "__iter__"):
            raise TypeError("ListType.from_obj expects py_obj to by list-like")
        py_list = py_obj.tolist() if hasattr(py_obj, "tolist") else list(py_obj)
        elm_type: Type = UnknownType() if None not in py_list else OptionalType(UnknownType())
        for item in py_list:
            # An invalid element type is kept rather than raised, as W&B does.
            elm_type = elm_type.assign(item)
        return cls(elm_type, len(py_list))

    def assign_type(self, wb_type: Type) -> Type:
        if isinstance(wb_type, ListType):
            assigned = self.params["element_type"].assign_type(wb_type.params["element_type"])
            if not isinstance(assigned, InvalidType):
                same = self.params["length"] == wb_type.params["length"]
                return ListType(assigned, self.params["length"] if same else None)
        return InvalidType()

    def assign(self, py_obj: Any = None) -> Type:
        if hasattr(py_obj, "__iter__"):
            element_type: Type = self.params["element_type"]
            py_list = list(py_obj)
            for item in py_list:
                element_type = element_type.assign(item)
                if isinstance(element_type, InvalidType):
                    return InvalidType()
            return ListType(element_type, len(py_list))
        return InvalidType()

    def __repr__(self) -> str:
        return f"{self.params['element_type']}[]"


class NDArrayType(Type):
    """A numpy array of one shape; large ones are stored beside the table as ``.npz``."""

    name = "ndarray"

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
            while isinstance(target, list):
                shape.append(len(target))
                if target:
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


class TypedDictType(Type):
    """A dict whose keys each have a type; a table's ``column_types`` is one."""

    name = "typedDict"
    legacy_names: ClassVar[list[str]] = ["dictionary"]
    types: ClassVar[list[type]] = [dict]

    def __init__(self, type_map: dict[Any, Any] | None = None) -> None:
        super().__init__()
        self.params["type_map"] = {
            key: TypeRegistry.type_from_dtype(value) for key, value in (type_map or {}).items()
        }

    @classmethod
    def from_obj(cls, py_obj: Any = None) -> Type:
        if not isinstance(py_obj, dict):
            raise TypeError("TypedDictType.from_obj expects a dictionary")
        return cls({key: TypeRegistry.type_of(value) for key, value in py_obj.items()})

    def assign_type(self, wb_type: Type) -> Type:
        mine: dict[Any, Type] = self.params["type_map"]
        if isinstance(wb_type, TypedDictType) and not set(wb_type.params["type_map"]) - set(mine):
            type_map: dict[Any, Type] = {}
            for key, own in mine.items():
                type_map[key] = own.assign_type(wb_type.params["type_map"].get(key, UnknownType()))
                if isinstance(type_map[key], InvalidType):
                    return InvalidType()
            return TypedDictType(type_map)
        return InvalidType()

    def assign(self, py_obj: Any = None) -> Type:
        mine: dict[Any, Type] = self.params["type_map"]
        if isinstance(py_obj, dict) and not set(py_obj) - set(mine):
            type_map: dict[Any, Type] = {}
            for key, own in mine.items():
                type_map[key] = own.assign(py_obj.get(key, None))
                if isinstance(type_map[key], InvalidType):
                    return InvalidType()
            return TypedDictType(type_map)
        return InvalidType()

    def explain(self, other: Any, depth: int = 0) -> str:
        text = super().explain(other, depth)
        gap = "\t" * depth
        if isinstance(other, dict):
            extra = set(other) - set(self.params["type_map"])
            if extra:
                text += f"\n{gap}Found extra keys: {','.join(str(k) for k in extra)}"
            for key, own in self.params["type_map"].items():
                value = other.get(key, None)
                if isinstance(own.assign(value), InvalidType):
                    text += f"\n{gap}Key '{key}':\n{own.explain(value, depth=depth + 1)}"
        return text

    def __repr__(self) -> str:
        return str(self.params["type_map"])


class OpaqueType(Type):
    """A type read from JSON whose ``wb_type`` soko does not model; written back verbatim."""

    name = "__opaque__"

    def __init__(self, raw: dict[str, Any]) -> None:
        super().__init__()
        self._raw = raw
        self.params["raw"] = raw

    def assign_type(self, wb_type: Type) -> Type:
        return (
            self if isinstance(wb_type, OpaqueType) and wb_type._raw == self._raw else InvalidType()
        )

    def to_json(self, writer: Writer | None = None) -> dict[str, Any]:
        return self._raw

    def __repr__(self) -> str:
        # As W&B prints its own type of this name: unions are ordered by this text.
        text = str(self._raw.get("wb_type", "")).capitalize()
        params = self._raw.get("params")
        if isinstance(params, dict) and params:
            text += "(" + ", ".join(f"{k}:{v}" for k, v in params.items()) + ")"
        return text


def is_class_determined(wb_type: Type) -> bool:
    """Whether what *wb_type* becomes when a value is assigned depends on its class alone."""
    if isinstance(wb_type, UnionType):
        return all(is_class_determined(m) for m in wb_type.params["allowed_types"])
    if isinstance(wb_type, TypedDictType):
        return all(is_class_determined(m) for m in wb_type.params["type_map"].values())
    return wb_type.class_determined


def row_signature(values: Sequence[Any]) -> tuple[type, ...] | None:
    """The value classes of a row, when they alone decide the row's types; else None.

    A table caches the signatures its column types already absorb, so that adding the
    200,000th row of ints and strings does not re-run the whole type inference.
    """
    signature: list[type] = []
    for value in values:
        cls = value.__class__
        if cls is float and math.isnan(value):
            cls = type(None)
        handler = TypeRegistry.handler_for_class(cls)
        if handler is not None and not handler.class_determined:
            return None
        signature.append(cls)
    return tuple(signature)


def is_numpy_array(value: Any) -> bool:
    np = numpy_or_none()
    return np is not None and isinstance(value, np.ndarray)


def _register_numpy() -> None:
    """Register numpy's scalar and array classes, as W&B does when numpy is importable."""
    TypeRegistry._numpy_done = True
    np = numpy_or_none()
    if np is None:
        return
    names = [
        "byte", "short", "ushort", "intc", "uintc", "int_", "uint", "longlong", "ulonglong",
        "half", "float16", "single", "double", "longdouble", "csingle", "cdouble", "clongdouble",
        "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "intp",
        "uintp", "float32", "float64", "complex64", "complex128",
    ]  # fmt: skip
    NumberType.types.extend(getattr(np, n) for n in names if hasattr(np, n))
    TimestampType.types.append(np.datetime64)
    BooleanType.types.append(np.bool_)
    NDArrayType.types.append(np.ndarray)
    for handler in (NumberType, TimestampType, BooleanType, NDArrayType):
        TypeRegistry.add(handler)


for _builtin in (
    InvalidType, AnyType, UnknownType, NoneType, StringType, TimestampType, NumberType,
    BooleanType, ListType, TypedDictType, UnionType, PythonObjectType, ConstType, NDArrayType,
):  # fmt: skip
    TypeRegistry.add(_builtin)
