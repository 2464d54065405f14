"""Which rows a table may add without running type inference again.

A row's types follow from its values' classes alone when every class is handled by a type
whose assignment depends on the class only (strings, numbers, booleans, …); a table keeps
the class signatures its column types have absorbed and skips inference for rows that
repeat one. It imports nothing from soko but :mod:`.core` and :mod:`.structured`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from soko.sdk.data_types.dtypes.core import Type, TypeRegistry
from soko.sdk.data_types.dtypes.structured import TypedDictType, UnionType


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
        if handler is not None and (
            not handler.class_determined
            or (handler.value_may_decide and handler.decided_by_value(value))
        ):
            return None
        signature.append(cls)
    return tuple(signature)
