"""The column type system of tables: W&B's ``_dtypes``, ported rule for rule.

A Table infers a type per column from the values added to it and stores the result in its
JSON as ``column_types``. W&B's UI and SDK read those types, so the inference rules here
(what a value's type is, how two types merge, how unions are flattened and ordered) follow
``wandb/sdk/data_types/_dtypes.py`` exactly, quirks included: the bytes of a table file
depend on them. Types for media and tables register themselves from their own modules.

- :mod:`.core`: the :class:`Type` base and its JSON form, the :class:`TypeRegistry` that
  finds a value's or a JSON object's type, and the types it answers with itself.
- :mod:`.scalars`: strings, numbers, timestamps, booleans, constants, "any", "unknown".
- :mod:`.structured`: lists, typed dicts, unions, and :func:`type_from_dtype`.
- :mod:`.ndarray`: numpy arrays.
- :mod:`.signatures`: which rows a table may add without inferring their types again.

Importing this package registers the built-in types. It imports nothing from soko but
:mod:`soko.sdk.data_types.base`.
"""

from __future__ import annotations

from soko.sdk.data_types.dtypes.core import (
    InvalidType,
    NoneType,
    OpaqueType,
    PythonObjectType,
    Type,
    TypeRegistry,
)
from soko.sdk.data_types.dtypes.ndarray import NDArrayType, is_numpy_array
from soko.sdk.data_types.dtypes.scalars import (
    AnyType,
    BooleanType,
    ConstType,
    NumberType,
    StringType,
    TimestampType,
    UnknownType,
)
from soko.sdk.data_types.dtypes.signatures import is_class_determined, row_signature
from soko.sdk.data_types.dtypes.structured import (
    ListType,
    OptionalType,
    TypedDictType,
    UnionType,
    type_from_dtype,
)

__all__ = [
    "AnyType",
    "BooleanType",
    "ConstType",
    "InvalidType",
    "ListType",
    "NDArrayType",
    "NoneType",
    "NumberType",
    "OpaqueType",
    "OptionalType",
    "PythonObjectType",
    "StringType",
    "TimestampType",
    "Type",
    "TypeRegistry",
    "TypedDictType",
    "UnionType",
    "UnknownType",
    "is_class_determined",
    "is_numpy_array",
    "row_signature",
    "type_from_dtype",
]
