"""``soko.data_types.PartitionedTable``: one table made of the part tables under a folder.

Stored as ``<name>.partitioned-table.json`` holding ``{"_type": "partitioned-table",
"parts_path": folder}``; the parts are ordinary ``*.table.json`` entries under that folder
(the W&B layout). All parts must have the same columns: adding a partitioned table whose
parts differ is refused, and iterating one read from elsewhere raises when a part differs.
Parts are loaded one at a time while iterating, so only the part being read is in memory.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, ClassVar

from soko.errors import ValidationError
from soko.sdk.data_types import dtypes
from soko.sdk.data_types.base import Media, Reader, Writer


class PartitionedTable(Media):
    """The tables under ``parts_path`` in an artifact, read as one."""

    _log_type = "partitioned-table"

    def __init__(self, parts_path: str) -> None:
        super().__init__()
        if not isinstance(parts_path, str) or not parts_path.strip("/"):
            raise ValidationError("parts_path must name a folder of the artifact")
        self.parts_path = parts_path
        self._reader: Reader | None = None
        self._part_paths: list[str] = []

    def validate_for_artifact(self, writer: Writer) -> None:
        parts = writer.paths_with_local_files(self.parts_path)
        columns: list[Any] | None = None
        for path, local in parts:
            if not path.endswith(".table.json"):
                continue
            with open(local, encoding="utf-8") as handle:
                part_columns = json.load(handle).get("columns")
            if columns is None:
                columns = part_columns
            elif part_columns != columns:
                raise ValidationError(
                    f"Table parts have non-matching columns: {path} has {part_columns}, "
                    f"earlier parts have {columns}."
                )

    def to_json(self, writer: Writer) -> dict[str, Any]:
        return {"_type": PartitionedTable._log_type, "parts_path": self.parts_path}

    @classmethod
    def from_json(cls, json_obj: dict[str, Any], reader: Reader) -> PartitionedTable:
        instance = cls(json_obj["parts_path"])
        instance._reader = reader
        instance._part_paths = [
            p for p in reader.paths_under(instance.parts_path) if p.endswith(".table.json")
        ]
        return instance

    @property
    def part_paths(self) -> list[str]:
        """The artifact paths of the part tables, in path order (empty until loaded)."""
        return list(self._part_paths)

    def parts(self) -> Iterator[Any]:
        """Each part as a :class:`~soko.Table`, loaded when reached."""
        if self._reader is None:
            raise ValidationError("Only a PartitionedTable read from an artifact has parts.")
        for path in self._part_paths:
            yield self._reader.get(path)

    def iterrows(self) -> Iterator[tuple[int, list[Any]]]:
        """``(index, row)`` over the rows of every part, in part order."""
        columns: list[Any] | None = None
        index = 0
        for part in self.parts():
            if columns is None:
                columns = part.columns
            elif columns != part.columns:
                raise ValidationError(
                    f"Table parts have non-matching columns. {columns} != {part.columns}"
                )
            for _, row in part.iterrows():
                yield index, row
                index += 1

    def __iter__(self) -> Iterator[list[Any]]:
        return (row for _, row in self.iterrows())

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PartitionedTable) and self.parts_path == other.parts_path

    __hash__ = Media.__hash__

    def __repr__(self) -> str:
        return f"<PartitionedTable {self.parts_path!r}>"


class PartitionedTableType(dtypes.Type):
    name = "partitioned-table"
    types: ClassVar[list[type]] = [PartitionedTable]


dtypes.TypeRegistry.add(PartitionedTableType)
