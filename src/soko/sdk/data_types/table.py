"""``soko.Table``: rows of typed cells, stored as W&B's ``<name>.table.json``.

Column types are inferred per value (:mod:`soko.sdk.data_types.dtypes`) and checked on every
``add_data``: a value that does not fit its column is a ``TypeError`` (as in W&B) unless the
table was made with ``allow_mixed_types=True``. The JSON written to an artifact has W&B's
keys (``_type``, ``columns``, ``data``, ``ncols``, ``nrows``, ``column_types``, ``log_mode``);
images in cells are added as media files. Multi-dimensional numpy columns go to an ``.npz``
file beside the table, as W&B does. An artifact table holds at most
``Table.MAX_ARTIFACT_ROWS`` (200,000) rows: more is an error, not a silent truncation.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from typing import Any, ClassVar

from soko.errors import ValidationError
from soko.sdk.data_types import dtypes
from soko.sdk.data_types.base import Media, Reader, WBValue, Writer, media_tmp_dir, require
from soko.sdk.data_types.cells import cell_to_json, cells_from_json
from soko.sdk.data_types.keys import (
    ForeignIndexType,
    ForeignKeyType,
    PrimaryKeyType,
    TableIndex,
    TableKey,
)

_LOG_MODES = ("IMMUTABLE", "MUTABLE", "INCREMENTAL")


class Table(Media):
    """A table: ``Table(columns=None, data=None, rows=None, dataframe=None, dtype=None, ...)``.

    ``data`` is a list of rows, a 2-D numpy array or a pandas DataFrame; ``columns`` defaults
    to ``["Input", "Output", "Expected"]``. ``dtype`` fixes column types (one for all columns
    or one per column); ``optional`` says whether None is allowed (default: yes).
    """

    MAX_ROWS: ClassVar[int] = 10000
    MAX_ARTIFACT_ROWS: ClassVar[int] = 200000
    _MAX_EMBEDDING_DIMENSIONS: ClassVar[int] = 150
    _log_type = "table"

    def __init__(
        self,
        columns: list[str | int] | None = None,
        data: Any = None,
        rows: list[Any] | None = None,
        dataframe: Any = None,
        dtype: Any = None,
        optional: bool | list[bool] = True,
        allow_mixed_types: bool = False,
        log_mode: str | None = "IMMUTABLE",
    ) -> None:
        super().__init__()
        if log_mode not in _LOG_MODES:
            raise ValidationError(
                f"Invalid log_mode: {log_mode}. Must be one of {list(_LOG_MODES)}"
            )
        self.log_mode = log_mode
        self.data: list[list[Any]] = []
        self.columns: list[str | int] = []
        self._column_types: dtypes.Type = dtypes.TypedDictType({})
        self._pk_col: str | int | None = None
        self._fk_cols: set[str | int] = set()
        self._absorbed: tuple[dtypes.Type | None, set[tuple[type, ...]]] = (None, set())
        if allow_mixed_types:
            dtype = dtypes.AnyType
        if columns is None:
            columns = ["Input", "Output", "Expected"]
        if dataframe is None and _is_dataframe(data):
            dataframe = data
        if dataframe is not None:
            self._start(list(dataframe.columns), dtype, optional)
            for index in range(len(dataframe)):
                self.add_data(*(dataframe[col].values[index] for col in self.columns))
        else:
            source = data if data is not None else rows if rows is not None else []
            if not isinstance(source, list) and not dtypes.is_numpy_array(source):
                raise ValidationError("data must be a list of rows, a numpy array or a DataFrame")
            self._start(list(columns), dtype, optional)
            for row in source:
                self.add_data(*row)

    def _start(self, columns: list[Any], dtype: Any, optional: bool | list[bool]) -> None:
        if not isinstance(columns, list) or not all(type(c) in (str, int) for c in columns):
            raise ValidationError("columns must be a list of strings or ints")
        self.columns = columns
        if dtype is None:
            dtype = dtypes.UnknownType()
        dtype_list = dtype if isinstance(dtype, list) else [dtype] * len(columns)
        optional_list = optional if isinstance(optional, list) else [optional] * len(columns)
        self._column_types = dtypes.TypedDictType({})
        for column, column_dtype, column_optional in zip(
            columns, dtype_list, optional_list, strict=False
        ):
            self.cast(column, column_dtype, column_optional)

    def __repr__(self) -> str:
        return f"<Table {len(self.data)} rows x {len(self.columns)} columns {self.columns}>"

    # ----- editing ----------------------------------------------------------------------

    def cast(self, col_name: str | int, dtype: Any, optional: bool = False) -> dtypes.Type:
        """Give a column a type (a Python class, a soko class, a Type or an example value)."""
        if col_name not in self.columns:
            raise ValidationError(f"No column {col_name!r} in {self.columns}")
        wbtype = dtypes.type_from_dtype(dtype)
        if optional:
            wbtype = dtypes.OptionalType(wbtype)
        col_index = self.columns.index(col_name)
        for row in self.data:
            result = wbtype.assign(row[col_index])
            if isinstance(result, dtypes.InvalidType):
                found = dtypes.TypeRegistry.type_of(row[col_index])
                raise TypeError(
                    f"Existing data {row[col_index]}, of type {found} cannot be cast to {wbtype}"
                )
            wbtype = result
        is_key = isinstance(wbtype, PrimaryKeyType | ForeignKeyType | ForeignIndexType)
        if is_key and optional:
            raise ValidationError(
                "Primary keys, foreign keys, and foreign indexes cannot be optional."
            )
        # Only foreign keys are checked here, as in W&B; an index column pointing at its own
        # table is refused when the table is stored (it would have to contain itself).
        if isinstance(wbtype, ForeignKeyType) and wbtype.params["table"] is self:
            raise ValidationError("Cannot set a foreign table reference to same table.")
        if isinstance(wbtype, PrimaryKeyType) and self._pk_col is not None:
            raise ValidationError(
                f"Cannot have multiple primary keys - {self._pk_col} is already set "
                "as the primary key."
            )
        self._column_types.params["type_map"][col_name] = wbtype
        # The types changed in place: rows absorbed by the old ones may not fit the new.
        self._absorbed = (None, set())
        self._update_keys()
        return wbtype

    def add_data(self, *data: Any) -> None:
        """Append one row; raises TypeError when a value does not fit its column's type."""
        if len(data) != len(self.columns):
            raise ValidationError(
                f"This table expects {len(self.columns)} columns: {self.columns}, found {len(data)}"
            )
        for index, item in enumerate(data):
            if isinstance(item, TableKey | TableIndex):
                self.cast(self.columns[index], dtypes.TypeRegistry.type_of(item), optional=False)
        signature = dtypes.row_signature(data)
        owner, absorbed = self._absorbed
        if signature is None or owner is not self._column_types or signature not in absorbed:
            incoming = {column: data[i] for i, column in enumerate(self.columns)}
            result = self._column_types.assign(incoming)
            if isinstance(result, dtypes.InvalidType):
                raise TypeError(
                    "Data row contained incompatible types:\n"
                    f"{self._column_types.explain(incoming)}"
                )
            if (
                signature is not None
                and result == self._column_types
                and dtypes.is_class_determined(result)
            ):
                # Rows of this signature leave the types as they are: skip inference for them.
                if owner is not self._column_types:
                    self._absorbed = (self._column_types, set())
                self._absorbed[1].add(signature)
            else:
                self._column_types = result
        self.data.append(list(data))
        self._update_keys(force_last=True)

    def add_row(self, *row: Any) -> None:
        """Deprecated in W&B: the same as :meth:`add_data`."""
        self.add_data(*row)

    def add_column(self, name: str, data: Any, optional: bool = False) -> None:
        """Append a column holding *data* (a list or array with one value per row)."""
        if not isinstance(name, str) or name in self.columns:
            raise ValidationError(f"Column name must be a new string, not {name!r}")
        if not isinstance(data, list) and not dtypes.is_numpy_array(data):
            raise ValidationError("Column data must be a list or a numpy array")
        first = not self.columns
        if not first and len(data) != len(self.data):
            raise ValidationError(f"Expected length {len(self.data)}, found {len(data)}")
        for index in range(len(data)):
            if first:
                self.data.append([])
            self.data[index].append(data[index])
        self.columns.append(name)
        try:
            self.cast(name, dtypes.UnknownType(), optional=optional)
        except TypeError:
            # Undo, so that a refused column leaves the table as it was.
            self.data = [] if first else [row[:-1] for row in self.data]
            self.columns = self.columns[:-1]
            raise

    def add_computed_columns(self, fn: Callable[[int, dict[Any, Any]], dict[str, Any]]) -> None:
        """Add columns computed by ``fn(index, row_dict) -> {new column: value}``."""
        new_columns: dict[str, list[Any]] = {}
        for index, row in self.iterrows():
            produced = fn(index, dict(zip(self.columns, row, strict=True)))
            for key, value in produced.items():
                new_columns.setdefault(key, []).append(value)
        for key, values in new_columns.items():
            self.add_column(key, values)

    def set_pk(self, col_name: str | int) -> None:
        self.cast(col_name, PrimaryKeyType())

    def set_fk(self, col_name: str | int, table: Table, table_col: str) -> None:
        if col_name == self._pk_col:
            raise ValidationError("The primary key column cannot also be a foreign key.")
        self.cast(col_name, ForeignKeyType(table, table_col))

    # ----- reading ----------------------------------------------------------------------

    def get_column(self, name: str | int, convert_to: str | None = None) -> Any:
        """The values of one column; ``convert_to="numpy"`` gives a numpy array."""
        if name not in self.columns:
            raise ValidationError(f"No column {name!r} in {self.columns}")
        if convert_to not in (None, "numpy"):
            raise ValidationError('convert_to must be None or "numpy"')
        index = self.columns.index(name)
        column: list[Any] = []
        for row in self.data:
            item = row[index]
            if (
                convert_to is not None
                and isinstance(item, WBValue)
                and hasattr(item, "to_data_array")
            ):
                item = item.to_data_array()
            column.append(item)
        if convert_to == "numpy":
            return require("numpy", "Table.get_column(convert_to='numpy')").array(column)
        return column

    def get_index(self) -> list[TableIndex]:
        """Row indexes that, put in another table, link its rows to this one."""
        return [TableIndex.of(i, self) for i in range(len(self.data))]

    def index_ref(self, index: int) -> TableIndex:
        if not 0 <= index < len(self.data):
            raise ValidationError(f"Row index {index} out of range")
        return TableIndex.of(index, self)

    def get_dataframe(self) -> Any:
        """The table as a ``pandas.DataFrame``."""
        pandas = require("pandas", "Table.get_dataframe()")
        return pandas.DataFrame.from_records(self.data, columns=self.columns)

    def iterrows(self) -> Iterator[tuple[TableIndex, list[Any]]]:
        """``(index, row)`` for every row; the index links rows when used in another table."""
        for index, row in enumerate(self.data):
            yield TableIndex.of(index, self), row

    def __iter__(self) -> Iterator[list[Any]]:
        return iter(self.data)

    # ----- keys -------------------------------------------------------------------------

    def _update_keys(self, force_last: bool = False) -> None:
        type_map = self._column_types.params["type_map"]
        pk_col = None
        fk_cols: set[str | int] = set()
        for column, column_type in type_map.items():
            if isinstance(column_type, PrimaryKeyType):
                pk_col = column
            elif isinstance(column_type, ForeignKeyType | ForeignIndexType):
                fk_cols.add(column)
        changed = pk_col != self._pk_col or fk_cols != self._fk_cols
        if changed:
            if pk_col is None and self._pk_col is not None:
                raise ValidationError(f"Cannot unset primary key (column {self._pk_col})")
            if self._fk_cols - fk_cols:
                raise ValidationError(f"Cannot unset foreign key ({self._fk_cols - fk_cols})")
            self._pk_col = pk_col
            self._fk_cols = fk_cols
        if changed or force_last:
            rows = (
                range(len(self.data) - 1, len(self.data)) if not changed else range(len(self.data))
            )
            for index in rows:
                self._wrap_keys(index, type_map)

    def _wrap_keys(self, row_index: int, type_map: dict[Any, dtypes.Type]) -> None:
        row = self.data[row_index]
        for column in self._fk_cols:
            col_index = self.columns.index(column)
            column_type = type_map[column]
            if isinstance(column_type, ForeignKeyType) and not isinstance(row[col_index], TableKey):
                row[col_index] = TableKey.of(
                    row[col_index], column_type.params["table"], column_type.params["col_name"]
                )
            elif isinstance(column_type, ForeignIndexType) and not isinstance(
                row[col_index], TableIndex
            ):
                row[col_index] = TableIndex.of(row[col_index], column_type.params["table"])
        if self._pk_col is not None:
            col_index = self.columns.index(self._pk_col)
            row[col_index] = TableKey.of(row[col_index], self, self._pk_col)

    # ----- storage ----------------------------------------------------------------------

    def validate_for_artifact(self, writer: Writer) -> None:
        if len(self.data) > Table.MAX_ARTIFACT_ROWS:
            raise ValidationError(
                f"Table row limit exceeded: table has {len(self.data)} rows, the limit for an "
                f"artifact is {Table.MAX_ARTIFACT_ROWS}. Split it into parts (a "
                "PartitionedTable) or raise soko.Table.MAX_ARTIFACT_ROWS."
            )

    def to_json(self, writer: Writer) -> dict[str, Any]:
        self.validate_for_artifact(writer)
        json_dict = super().to_json(writer)
        type_map: dict[Any, dtypes.Type] = self._column_types.params["type_map"]
        npz_columns: set[int] = set()
        for col_index, column in enumerate(self.columns):
            ndarray_type = _ndarray_member(type_map[column])
            if ndarray_type is None:
                continue
            shape = ndarray_type.params["shape"]
            if len(shape) == 1 and shape[0] <= self._MAX_EMBEDDING_DIMENSIONS:
                # Short 1-d arrays are embeddings: kept inline as lists, as W&B does.
                type_map[column] = dtypes.ListType(dtypes.NumberType, shape[0])
            else:
                ndarray_type.serialization_path = {
                    "path": self._save_npz(column, writer),
                    "key": str(column),
                }
                npz_columns.add(col_index)
        rows = [
            [None if i in npz_columns else cell_to_json(v, writer) for i, v in enumerate(row)]
            for row in self.data
        ]
        json_dict.update(
            {
                "_type": Table._log_type,
                "columns": self.columns,
                "data": rows,
                "ncols": len(self.columns),
                "nrows": len(rows),
                "column_types": self._column_types.to_json(writer),
                "log_mode": self.log_mode,
            }
        )
        return json_dict

    def _save_npz(self, column: str | int, writer: Writer) -> str:
        np = require("numpy", "A table with numpy array columns")
        file_name = f"{column}_{secrets.token_hex(8)}.npz"
        local = os.path.join(media_tmp_dir(), file_name)
        np.savez_compressed(local, **{str(column): self.get_column(column, convert_to="numpy")})
        return writer.add_file(local, f"media/serialized_data/{file_name}", is_tmp=True).path

    @classmethod
    def from_json(cls, json_obj: dict[str, Any], reader: Reader) -> Table:
        columns: list[str | int] = list(json_obj["columns"])
        column_types: dtypes.Type | None = None
        timestamp_columns: set[int] = set()
        array_columns: dict[int, Any] = {}
        if json_obj.get("column_types") is not None:
            column_types = dtypes.TypeRegistry.type_from_dict(json_obj["column_types"], reader)
            # JSON object keys are strings, even for integer column names.
            position = {str(c): i for i, c in enumerate(columns)}
            for column, column_type in column_types.params["type_map"].items():
                members = column_type.params["allowed_types"] if isinstance(
                    column_type, dtypes.UnionType) else [column_type]  # fmt: skip
                if any(isinstance(m, dtypes.TimestampType) for m in members):
                    timestamp_columns.add(position[str(column)])
                ndarray_type = _ndarray_member(column_type)
                if ndarray_type is not None and ndarray_type.serialization_path is not None:
                    np = require("numpy", "A table with numpy array columns")
                    where = ndarray_type.serialization_path
                    array_columns[position[str(column)]] = np.load(
                        reader.local_path(where["path"])
                    )[where["key"]]
                    ndarray_type.serialization_path = None
        rows = [
            cells_from_json(
                row,
                row_index=index,
                timestamp_columns=timestamp_columns,
                array_columns=array_columns,
                reader=reader,
            )
            for index, row in enumerate(json_obj["data"])
        ]
        log_mode = json_obj.get("log_mode", "IMMUTABLE")
        table = cls(columns=columns, log_mode=log_mode if log_mode in _LOG_MODES else "IMMUTABLE")
        # The stored column types already describe every row: checking each row again
        # would only slow a 200,000-row load down.
        table.data = rows
        if column_types is not None:
            table._column_types = column_types
        table._update_keys()
        return table

    # ----- comparison -------------------------------------------------------------------

    def _eq_debug(self, other: object, should_assert: bool = False) -> bool:
        def fail(message: str) -> bool:
            if should_assert:
                raise AssertionError(message)
            return False

        if not isinstance(other, Table):
            return fail(f"Found type {other.__class__}, expected {Table}")
        if len(self.data) != len(other.data):
            return fail(f"Found {len(other.data)} rows, expected {len(self.data)}")
        if self.columns != other.columns:
            return fail(f"Found columns {other.columns}, expected {self.columns}")
        if self._column_types != other._column_types:
            return fail(f"Found column type {other._column_types}, expected {self._column_types}")
        for row_index, (mine, theirs) in enumerate(zip(self.data, other.data, strict=True)):
            for col_index, (a, b) in enumerate(zip(mine, theirs, strict=True)):
                if not _cells_equal(a, b):
                    return fail(f"Unequal data at row {row_index} column {col_index}: {b} != {a}")
        return True

    def __eq__(self, other: object) -> bool:
        return self._eq_debug(other)

    __hash__ = Media.__hash__


def _cells_equal(a: Any, b: Any) -> bool:
    if dtypes.is_numpy_array(a) or dtypes.is_numpy_array(b):
        np = require("numpy", "Comparing numpy cells")
        return bool(np.array_equal(a, b))
    return bool(a == b)


def _ndarray_member(column_type: dtypes.Type) -> dtypes.NDArrayType | None:
    if isinstance(column_type, dtypes.NDArrayType):
        return column_type
    found = None
    if isinstance(column_type, dtypes.UnionType):
        for member in column_type.params["allowed_types"]:
            if isinstance(member, dtypes.NDArrayType):
                found = member
    return found


def _is_dataframe(value: Any) -> bool:
    return type(value).__name__ == "DataFrame" and type(value).__module__.startswith("pandas")


class TableType(dtypes.Type):
    """The type of a cell or column holding whole tables."""

    name = "table"
    legacy_names: ClassVar[list[str]] = ["wandb.Table"]
    types: ClassVar[list[type]] = [Table]

    def __init__(self, column_types: Any = None) -> None:
        super().__init__()
        if column_types is None:
            column_types = dtypes.UnknownType()
        if isinstance(column_types, dict):
            column_types = dtypes.TypedDictType(column_types)
        elif not isinstance(column_types, dtypes.TypedDictType | dtypes.UnknownType):
            raise TypeError("column_types must be a dict or TypedDictType")
        self.params["column_types"] = column_types

    def assign_type(self, wb_type: dtypes.Type) -> dtypes.Type:
        if isinstance(wb_type, TableType):
            merged = self.params["column_types"].assign_type(wb_type.params["column_types"])
            if not isinstance(merged, dtypes.InvalidType):
                return TableType(merged)
        return dtypes.InvalidType()

    @classmethod
    def from_obj(cls, py_obj: Any = None) -> dtypes.Type:
        if not isinstance(py_obj, Table):
            raise TypeError("py_obj must be a soko.Table")
        return cls(py_obj._column_types)


dtypes.TypeRegistry.add(TableType)
