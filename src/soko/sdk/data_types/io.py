"""Putting values into artifacts and getting them back: ``Artifact.add`` and ``Artifact.get``.

:func:`add_to_artifact` follows W&B's ``Artifact.add``: the value writes its media through
an :class:`ArtifactWriter`, its JSON is dumped with sorted keys (W&B's exact bytes) to a
file in a staging folder that lives as long as the artifact object, and that file is added
as ``<name>.<type>.json``. Adding the same object twice returns the first entry; a name
under ``media/tables`` is renamed after the file's digest, as W&B does for linked tables.

:func:`load_from_artifact` follows ``Artifact.get``: the name is resolved with or without its
type suffix, the JSON entry is read, and then only the entries the value names (an image's
file, a table's ``.npz`` columns, a partition's parts when iterated) are fetched, never the
whole artifact. On a draft, entries are read from the local files they were added from; on
a logged artifact each needed entry is downloaded with ``entry.download()``.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import weakref
from dataclasses import dataclass, field
from typing import Any

from soko.core.names import validate_artifact_path
from soko.errors import ArtifactFinalizedError, SokoError, ValidationError
from soko.sdk.data_types.base import WBValue
from soko.sdk.data_types.image import Image
from soko.sdk.data_types.joined import JoinedTable
from soko.sdk.data_types.overlays import BoundingBoxes2D, Classes, ImageMask
from soko.sdk.data_types.partitioned import PartitionedTable
from soko.sdk.data_types.table import Table
from soko.sdk.entry import ArtifactFiles, ManifestEntry


@dataclass
class _ArtifactState:
    """What soko keeps per artifact object: its staging folder and the values added."""

    staging: str
    # id(value) -> (weak reference to the value, entry path). Weak, and a path rather than
    # an entry (which points back at the artifact), so the artifact can still be collected.
    added: dict[int, tuple[weakref.ref[WBValue], str]] = field(default_factory=dict)
    in_progress: set[int] = field(default_factory=set)


_states: weakref.WeakKeyDictionary[ArtifactFiles, _ArtifactState] = weakref.WeakKeyDictionary()


def _state(artifact: ArtifactFiles) -> _ArtifactState:
    state = _states.get(artifact)
    if state is None:
        # The draft reads staged files when it is logged, so they must outlive this call:
        # they go when the artifact object does.
        staging = tempfile.mkdtemp(prefix="soko-values-")
        weakref.finalize(artifact, shutil.rmtree, staging, ignore_errors=True)
        state = _states[artifact] = _ArtifactState(staging)
    return state


_STORABLE: tuple[type[WBValue], ...] = (
    Table, Image, PartitionedTable, JoinedTable, Classes, ImageMask, BoundingBoxes2D,
)  # fmt: skip


class ArtifactWriter:
    """The :class:`~soko.sdk.data_types.base.Writer` of one draft artifact."""

    def __init__(self, artifact: ArtifactFiles) -> None:
        self._artifact = artifact
        self._state = _state(artifact)

    def add(self, obj: WBValue, name: str, *, overwrite: bool = False) -> ManifestEntry:
        allowed = _STORABLE
        if not isinstance(obj, allowed):
            names = ", ".join(t.__name__ for t in allowed)
            raise TypeError(f"Found object of type {obj.__class__}, expected one of: {names}")
        name = os.fspath(name).replace(os.sep, "/")
        known = self._state.added.get(id(obj))
        if known is not None and known[0]() is obj and self.contains(known[1]):
            return self._artifact.get_entry(known[1])
        if id(obj) in self._state.in_progress:
            raise ValidationError(
                f"{type(obj).__name__} {name!r} links to itself (a column of its own row "
                "indexes or keys); it cannot be stored."
            )
        validate_artifact_path(obj.with_suffix(name))  # before any media is added
        obj.validate_for_artifact(self)
        self._state.in_progress.add(id(obj))
        try:
            value = obj.to_json(self)
        finally:
            self._state.in_progress.discard(id(obj))
        path = obj.with_suffix(name)
        if not overwrite and self.contains(path):
            return self._artifact.get_entry(path)
        text = json.dumps(value, sort_keys=True)
        folder = tempfile.mkdtemp(dir=self._state.staging)
        local = os.path.join(folder, path.rsplit("/", 1)[-1])
        with open(local, "w", encoding="utf-8") as handle:
            handle.write(text)
        # W&B renames tables linked from key columns after their digest.
        is_tmp = name.startswith("media/tables")
        entry = self._artifact.add_file(
            local, name=path, is_tmp=is_tmp, skip_cache=True, overwrite=overwrite
        )
        self._state.added[id(obj)] = (weakref.ref(obj), entry.path)
        if obj._artifact_target is None:
            obj._set_artifact_target(self._artifact, entry.path)
        return entry

    def add_file(self, local_path: str, name: str, *, is_tmp: bool = False) -> ManifestEntry:
        return self._artifact.add_file(local_path, name=name, is_tmp=is_tmp)

    def add_reference(self, uri: str, name: str) -> ManifestEntry:
        return self._artifact.add_reference(uri, name=name)[0]

    def added_path_of(self, local_path: str) -> str | None:
        return self._artifact.get_added_local_path_name(local_path)

    def contains(self, path: str) -> bool:
        try:
            self._artifact.get_entry(path)
        except KeyError:
            return False
        return True

    def paths_with_local_files(self, folder: str) -> list[tuple[str, str]]:
        """``(path, local file)`` for the entries under *folder* that came from local files."""
        prefix = folder.rstrip("/") + "/"
        found: list[tuple[str, str]] = []
        for entry in self._artifact.manifest:
            if entry.path.startswith(prefix):
                local = self._artifact.get_entry(entry.path).local_path
                if local is not None:
                    found.append((entry.path, local))
        return sorted(found)


class ArtifactReader:
    """The :class:`~soko.sdk.data_types.base.Reader` of one artifact, draft or logged."""

    def __init__(self, artifact: ArtifactFiles) -> None:
        self._artifact = artifact
        self._local: dict[str, str] = {}

    @property
    def artifact(self) -> ArtifactFiles:
        return self._artifact

    def get(self, name: str) -> WBValue | None:
        return _load(self, name)

    def local_path(self, path: str) -> str:
        cached = self._local.get(path)
        if cached is not None:
            return cached
        entry = self._artifact.get_entry(path)
        if self._artifact.is_draft() and entry.local_path is not None:
            local = entry.local_path
        else:
            try:
                local = entry.download()
            except SokoError:
                if entry.local_path is None:
                    raise
                local = entry.local_path
        self._local[path] = local
        return local

    def paths_under(self, folder: str) -> list[str]:
        prefix = folder.rstrip("/") + "/"
        return sorted(e.path for e in self._artifact.manifest if e.path.startswith(prefix))

    def resolve(self, name: str) -> tuple[str, type[WBValue]] | None:
        """The entry path and class of the value stored as *name* (suffix optional)."""
        name = os.fspath(name).replace(os.sep, "/")
        for option in WBValue.type_mapping().values():
            candidate = option.with_suffix(name)
            try:
                self._artifact.get_entry(candidate)
            except KeyError:
                continue
            return candidate, option
        return None


def _load(reader: ArtifactReader, name: str) -> WBValue | None:
    found = reader.resolve(name)
    if found is None:
        return None
    path, option = found
    with open(reader.local_path(path), encoding="utf-8") as handle:
        try:
            json_obj: Any = json.load(handle)
        except json.JSONDecodeError as exc:
            raise ValidationError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(json_obj, dict):
        raise ValidationError(f"{path} does not hold a JSON object")
    obj = option.from_json(json_obj, reader)
    obj._set_artifact_source(reader.artifact, name)
    return obj


def add_to_artifact(
    artifact: ArtifactFiles, obj: WBValue, name: str, *, overwrite: bool = False
) -> ManifestEntry:
    """Store *obj* (Table, Image, PartitionedTable, JoinedTable) in *artifact* as *name*."""
    if not artifact.is_draft():
        raise ArtifactFinalizedError("Artifact.add", artifact)
    return ArtifactWriter(artifact).add(obj, name, overwrite=overwrite)


def load_from_artifact(artifact: ArtifactFiles, name: str) -> WBValue | None:
    """The value stored in *artifact* as *name*, or None when there is none."""
    return _load(ArtifactReader(artifact), name)
