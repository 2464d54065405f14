"""``soko.JoinedTable``: two tables of an artifact joined on a key, for W&B's artifact UI.

Stored as ``<name>.joined-table.json`` holding ``{"_type": "joined-table", "table1": path,
"table2": path, "join_key": key}``. A table given as an object is added to the artifact
first (under ``t1_<id>``/``t2_<id>`` unless it was added or loaded under a name already);
a table given as a path must already be in the artifact.
"""

from __future__ import annotations

import base64
import os
from typing import Any, ClassVar

from soko.errors import ValidationError
from soko.sdk.data_types import dtypes
from soko.sdk.data_types.base import Media, Reader, WBValue, Writer
from soko.sdk.data_types.partitioned import PartitionedTable
from soko.sdk.data_types.table import Table
from soko.sdk.entry import ManifestEntry


def _is_table_input(table: Any) -> bool:
    if isinstance(table, str):
        return table.endswith(".table.json")
    if isinstance(table, Table | PartitionedTable):
        return True
    if isinstance(table, ManifestEntry):
        return (table.ref or table.path).endswith(".table.json")
    return False


class JoinedTable(Media):
    """``JoinedTable(table1, table2, join_key)``: tables as objects, paths or entries."""

    _log_type = "joined-table"

    def __init__(self, table1: Any, table2: Any, join_key: str | list[str]) -> None:
        super().__init__()
        if not isinstance(join_key, str) and (not isinstance(join_key, list) or len(join_key) != 2):
            raise ValidationError(
                "JoinedTable join_key should be a string or a list of two strings"
            )
        for label, table in (("table1", table1), ("table2", table2)):
            if not _is_table_input(table):
                raise ValidationError(
                    f"JoinedTable {label} should be an artifact path to a table "
                    "or a soko.Table object"
                )
        self._table1 = table1
        self._table2 = table2
        self._join_key = join_key

    @property
    def table1(self) -> Any:
        return self._table1

    @property
    def table2(self) -> Any:
        return self._table2

    @property
    def join_key(self) -> str | list[str]:
        return self._join_key

    def validate_for_artifact(self, writer: Writer) -> None:
        for table in (self._table1, self._table2):
            if isinstance(table, str) and not writer.contains(table):
                raise ValidationError(
                    f"JoinedTable table:{table} not found in artifact. Add a table to the "
                    f"artifact using Artifact#add(<table>, {table}) before adding this JoinedTable"
                )
            if isinstance(table, WBValue):
                table.validate_for_artifact(writer)

    def _ensure_in_artifact(self, table: Any, writer: Writer, index: int) -> str:
        if isinstance(table, Table | PartitionedTable):
            name = f"t{index}_{id(self)}"
            if table._artifact_source is not None and table._artifact_source[1] is not None:
                name = os.path.basename(table._artifact_source[1])
            return writer.add(table, name).path
        if isinstance(table, ManifestEntry):
            if table.ref is None:
                path = table.path
            else:
                # A unique yet deterministic name, from the entry's digest (W&B's rule).
                name = base64.standard_b64decode(table.digest).hex()[:20]
                kind = table.path.split(".")[-2]
                path = writer.add_reference(table.ref, f"{name}.{kind}.json").path
            if not writer.contains(path):
                raise ValidationError(f"JoinedTable table:{path} not found in artifact.")
            return path
        return str(table)

    def to_json(self, writer: Writer) -> dict[str, Any]:
        self.validate_for_artifact(writer)
        return {
            "_type": JoinedTable._log_type,
            "table1": self._ensure_in_artifact(self._table1, writer, 1),
            "table2": self._ensure_in_artifact(self._table2, writer, 2),
            "join_key": self._join_key,
        }

    @classmethod
    def from_json(cls, json_obj: dict[str, Any], reader: Reader) -> JoinedTable:
        table1 = reader.get(json_obj["table1"]) or json_obj["table1"]
        table2 = reader.get(json_obj["table2"]) or json_obj["table2"]
        return cls(table1, table2, json_obj["join_key"])

    def _eq_debug(self, other: object, should_assert: bool = False) -> bool:
        equal = isinstance(other, JoinedTable) and self._join_key == other._join_key
        if equal:
            assert isinstance(other, JoinedTable)
            equal = _tables_equal(self._table1, other._table1, should_assert) and _tables_equal(
                self._table2, other._table2, should_assert
            )
        if should_assert and not equal:
            raise AssertionError(f"JoinedTables differ: {self!r} != {other!r}")
        return equal

    def __eq__(self, other: object) -> bool:
        return self._eq_debug(other)

    __hash__ = Media.__hash__

    def __repr__(self) -> str:
        return f"<JoinedTable on {self._join_key!r}>"


def _tables_equal(a: Any, b: Any, should_assert: bool) -> bool:
    if isinstance(a, Table):
        return a._eq_debug(b, should_assert)
    return bool(a == b)


class JoinedTableType(dtypes.Type):
    name = "joined-table"
    types: ClassVar[list[type]] = [JoinedTable]


dtypes.TypeRegistry.add(JoinedTableType)
