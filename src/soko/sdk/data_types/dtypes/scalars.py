"""The types of single values: strings, numbers, timestamps, booleans and constants, and
the two placeholders of a column, "anything" and "not known yet".

It imports nothing from soko but :mod:`.core`.
"""

from __future__ import annotations

import datetime
from typing import Any, ClassVar

from soko.sdk.data_types.dtypes.core import InvalidType, NoneType, Type, TypeRegistry


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


class StringType(Type):
    name = "string"
    class_determined = True
    types: ClassVar[list[type]] = [str]


class NumberType(Type):
    name = "number"
    class_determined = True
    types: ClassVar[list[type]] = [int, float]
    numpy_names = (
        "byte", "short", "ushort", "intc", "uintc", "int_", "uint", "longlong", "ulonglong",
        "half", "float16", "single", "double", "longdouble", "csingle", "cdouble", "clongdouble",
        "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "intp",
        "uintp", "float32", "float64", "complex64", "complex128",
    )  # fmt: skip


class TimestampType(Type):
    name = "timestamp"
    class_determined = True
    types: ClassVar[list[type]] = [datetime.datetime, datetime.date]
    numpy_names = ("datetime64",)


class BooleanType(Type):
    name = "boolean"
    class_determined = True
    types: ClassVar[list[type]] = [bool]
    numpy_names = ("bool_",)


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


for _scalar in (
    AnyType, UnknownType, StringType, TimestampType, NumberType, BooleanType, ConstType,
):  # fmt: skip
    TypeRegistry.add(_scalar)
