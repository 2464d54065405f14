"""The types of structured values: lists, dicts with a type per key, and unions ("or")
of types, and :func:`type_from_dtype`, which reads the type a caller declares for a column
(``Table(dtype=...)``, ``Table.cast``) from a Python class, a list or dict of them, or a
constant.

It imports nothing from soko but :mod:`.core` and :mod:`.scalars`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from soko.sdk.data_types.dtypes.core import (
    InvalidType,
    NoneType,
    PythonObjectType,
    Type,
    TypeRegistry,
)
from soko.sdk.data_types.dtypes.scalars import ConstType, UnknownType


def type_from_dtype(dtype: Any) -> Type:
    """The type *dtype* declares: a type or type class as it is, a Python class by the type
    that handles it, ``[]`` / ``[x]`` a list, ``[x, y, ...]`` a union, a dict a typed dict,
    anything else a constant."""
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
            return ListType(type_from_dtype(dtype[0]))
        return UnionType([type_from_dtype(d) for d in dtype])
    if isinstance(dtype, dict):
        return TypedDictType({k: type_from_dtype(v) for k, v in dtype.items()})
    return ConstType(dtype)


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
        wb_types = [type_from_dtype(dt) for dt in allowed_types or []]
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
    return UnionType([type_from_dtype(dtype), NoneType()])


class ListType(Type):
    """A list of one element type; ``length`` is kept while every list has the same."""

    name = "list"
    types: ClassVar[list[type]] = [list, tuple, set, frozenset]

    def __init__(self, element_type: Any = None, length: int | None = None) -> None:
        super().__init__()
        wb_type = UnknownType() if element_type is None else type_from_dtype(element_type)
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


class TypedDictType(Type):
    """A dict whose keys each have a type; a table's ``column_types`` is one."""

    name = "typedDict"
    legacy_names: ClassVar[list[str]] = ["dictionary"]
    types: ClassVar[list[type]] = [dict]

    def __init__(self, type_map: dict[Any, Any] | None = None) -> None:
        super().__init__()
        self.params["type_map"] = {
            key: type_from_dtype(value) for key, value in (type_map or {}).items()
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


for _structured in (ListType, TypedDictType, UnionType):
    TypeRegistry.add(_structured)
