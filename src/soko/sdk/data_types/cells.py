"""Table cells to JSON and back, by W&B's rules (``_json_helper``, ``_process_table_row``).

Writing: values (media included, whose files are added through the writer) become JSON;
numpy scalars and arrays become Python numbers and lists; datetimes become milliseconds since
the epoch (UTC when naive); NaN becomes null. Reading: media objects are rebuilt from their
JSON, timestamps become aware datetimes, and columns stored in ``.npz`` files are restored.
"""

from __future__ import annotations

import datetime
import enum
import math
from decimal import Decimal
from typing import Any

from soko.sdk.data_types.base import Reader, WBValue, Writer, numpy_or_none


def _json_friendly(obj: Any) -> Any:
    np = numpy_or_none()
    if np is not None and isinstance(obj, np.ndarray):
        if obj.size == 1:
            return obj.flatten()[0]
        return obj.tolist() if obj.size <= 32 else obj
    if isinstance(obj, bytes):
        return obj.decode("utf-8")
    if isinstance(obj, datetime.datetime | datetime.date):
        return obj.isoformat()
    if callable(obj):
        if hasattr(obj, "__qualname__") and hasattr(obj, "__module__"):
            return f"{obj.__module__}.{obj.__qualname__}"
        return str(obj)
    if isinstance(obj, float) and math.isnan(obj):
        return None
    if isinstance(obj, set):
        return tuple(obj)
    if isinstance(obj, enum.Enum):
        return obj.name
    return obj


def cell_to_json(value: Any, writer: Writer) -> Any:
    """The JSON form of one table cell."""
    if isinstance(value, WBValue):
        return value.to_json(writer)
    if value.__class__ is dict:
        return {key: cell_to_json(item, writer) for key, item in value.items()}
    if hasattr(value, "tolist"):
        py_value = value.tolist()
        if value.__class__.__name__ == "datetime64" and isinstance(py_value, int):
            # A datetime64 that converts to an int counts nanoseconds: make it milliseconds.
            return cell_to_json(py_value / int(1e6), writer)
        return cell_to_json(py_value, writer)
    if hasattr(value, "item"):
        return cell_to_json(value.item(), writer)
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=datetime.UTC)
        return int(value.timestamp() * 1000)
    if isinstance(value, datetime.date):
        midnight = datetime.datetime(value.year, value.month, value.day, tzinfo=datetime.UTC)
        return int(midnight.timestamp() * 1000)
    if isinstance(value, list | tuple):
        return [cell_to_json(item, writer) for item in value]
    if isinstance(value, Decimal):
        return float(value)
    return _json_friendly(value)


def cells_from_json(
    row: list[Any],
    *,
    row_index: int,
    timestamp_columns: set[int],
    array_columns: dict[int, Any],
    reader: Reader,
) -> list[Any]:
    """One row of a table file as Python values."""
    cells: list[Any] = []
    for column, item in enumerate(row):
        cell: Any = item
        if column in timestamp_columns and isinstance(item, int | float):
            cell = datetime.datetime.fromtimestamp(item / 1000, tz=datetime.UTC)
        elif column in array_columns:
            cell = array_columns[column][row_index]
        elif isinstance(item, dict) and "_type" in item:
            obj = WBValue.init_from_json(item, reader)
            if obj is not None:
                cell = obj
        cells.append(cell)
    return cells
