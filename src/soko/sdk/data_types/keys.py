"""Links between tables: primary keys, foreign keys and foreign row indexes.

A table's key column holds :class:`TableKey` strings; a column of another table's
:meth:`~soko.Table.get_index` values holds :class:`TableIndex` ints. Their column types name
the linked table; stored in an artifact, that table is added beside it as
``media/tables/<digest>.table.json`` and the type records its path, as W&B does.
"""

from __future__ import annotations

import secrets
from typing import Any, ClassVar

from soko.sdk.data_types import dtypes
from soko.sdk.data_types.base import Reader, WBValue, Writer


class TableKey(str):
    """A string value of a key column, remembering its table and column."""

    _table: Any
    _col_name: str | int | None

    @classmethod
    def of(cls, value: Any, table: Any, col_name: str | int) -> TableKey:
        key = cls(value)
        key._table = table
        key._col_name = col_name
        return key


class TableIndex(int):
    """A row number of a table, usable in another table to link to that row."""

    _table: Any

    @classmethod
    def of(cls, value: Any, table: Any) -> TableIndex:
        index = cls(value)
        index._table = table
        return index

    def get_row(self) -> dict[Any, Any]:
        """The linked row as ``{column: value}``."""
        table = getattr(self, "_table", None)
        if table is None:
            return {}
        return dict(zip(table.columns, table.data[self], strict=True))


def _store_table(table: WBValue, writer: Writer | None, what: str) -> str:
    if writer is None:
        raise AssertionError(f"{what} does not support serialization without an artifact")
    return writer.add(table, f"media/tables/t_{secrets.token_hex(6)}").path


def _load_table(path: str, reader: Reader | None, what: str) -> Any:
    if reader is None:
        raise AssertionError(f"{what} does not support deserialization without an artifact")
    table = reader.get(path)
    if table is None:
        raise AssertionError("Unable to deserialize referenced table")
    return table


class PrimaryKeyType(dtypes.Type):
    name = "primaryKey"
    legacy_names: ClassVar[list[str]] = ["wandb.TablePrimaryKey"]

    def assign_type(self, wb_type: dtypes.Type) -> dtypes.Type:
        if isinstance(wb_type, dtypes.StringType | PrimaryKeyType):
            return self
        return dtypes.InvalidType()

    @classmethod
    def from_obj(cls, py_obj: Any = None) -> dtypes.Type:
        if not isinstance(py_obj, TableKey):
            raise TypeError("py_obj must be a TableKey")
        return cls()


class ForeignKeyType(dtypes.Type):
    name = "foreignKey"
    legacy_names: ClassVar[list[str]] = ["wandb.TableForeignKey"]
    types: ClassVar[list[type]] = [TableKey]

    def __init__(self, table: Any, col_name: str) -> None:
        super().__init__()
        if not isinstance(col_name, str) or col_name not in table.columns:
            raise ValueError(f"{col_name!r} is not a column of the linked table")
        self.params.update({"table": table, "col_name": col_name})

    def assign_type(self, wb_type: dtypes.Type) -> dtypes.Type:
        if isinstance(wb_type, dtypes.StringType):
            return self
        if (
            isinstance(wb_type, ForeignKeyType)
            and self.params["table"] is wb_type.params["table"]
            and self.params["col_name"] == wb_type.params["col_name"]
        ):
            return self
        return dtypes.InvalidType()

    @classmethod
    def from_obj(cls, py_obj: Any = None) -> dtypes.Type:
        if not isinstance(py_obj, TableKey):
            raise TypeError("py_obj must be a TableKey")
        return cls(py_obj._table, str(py_obj._col_name))

    def to_json(self, writer: Writer | None = None) -> dict[str, Any]:
        path = _store_table(self.params["table"], writer, "ForeignKeyType")
        return {
            "wb_type": self.name,
            "params": {"table": path, "col_name": self.params["col_name"]},
        }

    @classmethod
    def from_json(cls, json_dict: dict[str, Any], reader: Reader | None = None) -> dtypes.Type:
        params = json_dict["params"]
        return cls(_load_table(params["table"], reader, "ForeignKeyType"), params["col_name"])


class ForeignIndexType(dtypes.Type):
    name = "foreignIndex"
    legacy_names: ClassVar[list[str]] = ["wandb.TableForeignIndex"]
    types: ClassVar[list[type]] = [TableIndex]

    def __init__(self, table: Any) -> None:
        super().__init__()
        self.params["table"] = table

    def assign_type(self, wb_type: dtypes.Type) -> dtypes.Type:
        if isinstance(wb_type, dtypes.NumberType):
            return self
        if (
            isinstance(wb_type, ForeignIndexType)
            and self.params["table"] is wb_type.params["table"]
        ):
            return self
        return dtypes.InvalidType()

    @classmethod
    def from_obj(cls, py_obj: Any = None) -> dtypes.Type:
        if not isinstance(py_obj, TableIndex):
            raise TypeError("py_obj must be a TableIndex")
        return cls(py_obj._table)

    def to_json(self, writer: Writer | None = None) -> dict[str, Any]:
        path = _store_table(self.params["table"], writer, "ForeignIndexType")
        return {"wb_type": self.name, "params": {"table": path}}

    @classmethod
    def from_json(cls, json_dict: dict[str, Any], reader: Reader | None = None) -> dtypes.Type:
        return cls(_load_table(json_dict["params"]["table"], reader, "ForeignIndexType"))


for _key_type in (PrimaryKeyType, ForeignKeyType, ForeignIndexType):
    dtypes.TypeRegistry.add(_key_type)
