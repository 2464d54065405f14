"""What every artifact-storable value shares: W&B's ``WBValue`` and ``Media`` bases.

A value turns itself into a JSON object with ``to_json(writer)``, adding the files it needs
(an image's PNG, a referenced table) through the :class:`Writer`; ``from_json(json, reader)``
rebuilds it, fetching through the :class:`Reader` only the entries it names. The writer and
reader wrap one artifact (see :mod:`soko.sdk.data_types.io`); values never touch the
artifact directly, so the same code serves drafts and logged artifacts.

Optional dependencies (numpy, Pillow, pandas) are imported here on first use, never at
import time, so ``import soko`` stays fast.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import sys
import tempfile
import threading
from types import ModuleType
from typing import Any, ClassVar, Protocol

from soko.errors import ValidationError
from soko.sdk.entry import ArtifactFiles, ManifestEntry

_INSTALL_HINT = "pip install 'soko[media]'"


def require(module: str, purpose: str) -> Any:
    """Import an optional dependency, or explain which extra provides it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(f"{purpose} needs {module.split('.')[0]}: {_INSTALL_HINT}") from exc


def numpy_or_none() -> ModuleType | None:
    """numpy when some code has imported it; a numpy value cannot exist before that."""
    return sys.modules.get("numpy")


class Writer(Protocol):
    """The artifact a value is being added to."""

    def add(self, obj: WBValue, name: str) -> ManifestEntry:
        """Add another value (a table named by a key column, a JoinedTable's part)."""

    def add_file(self, local_path: str, name: str, *, is_tmp: bool = False) -> ManifestEntry:
        """Add a local file; ``is_tmp`` renames it after its content digest."""

    def add_reference(self, uri: str, name: str) -> ManifestEntry:
        """Track a URI (an image stored in a bucket) without copying it."""

    def added_path_of(self, local_path: str) -> str | None:
        """The artifact path a local file was already added under, if any."""

    def contains(self, path: str) -> bool:
        """Whether the artifact has an entry at *path*."""

    def paths_with_local_files(self, folder: str) -> list[tuple[str, str]]:
        """``(path, local file)`` for the entries under *folder* added from local files."""


class Reader(Protocol):
    """The artifact a value is being loaded from."""

    def get(self, name: str) -> WBValue | None:
        """Load another value stored in the same artifact."""

    def local_path(self, path: str) -> str:
        """A local file holding the bytes of the entry *path* (downloaded if needed)."""

    def paths_under(self, folder: str) -> list[str]:
        """The entry paths below *folder*, sorted."""

    @property
    def artifact(self) -> ArtifactFiles:
        """The artifact being read."""


class WBValue:
    """A value stored in an artifact as a JSON object whose ``_type`` names its class."""

    _log_type: ClassVar[str | None] = None

    def __init__(self) -> None:
        self._artifact_source: tuple[ArtifactFiles, str | None] | None = None
        self._artifact_target: tuple[ArtifactFiles, str | None] | None = None

    def to_json(self, writer: Writer) -> dict[str, Any]:
        raise NotImplementedError

    @classmethod
    def from_json(cls, json_obj: dict[str, Any], reader: Reader) -> WBValue:
        raise NotImplementedError

    def validate_for_artifact(self, writer: Writer) -> None:
        """Raise before anything is added when this value cannot be stored as it is."""

    @classmethod
    def with_suffix(cls, name: str, filetype: str = "json") -> str:
        """``name`` ending in ``.<log type>.<filetype>``, as W&B names value files."""
        suffix = f"{cls._log_type}.{filetype}" if cls._log_type is not None else filetype
        return name if name.endswith(suffix) else f"{name}.{suffix}"

    @staticmethod
    def type_mapping() -> dict[str, type[WBValue]]:
        """Every known value class by its ``_log_type``."""
        mapping: dict[str, type[WBValue]] = {}
        frontier: list[type[WBValue]] = [WBValue]
        explored: set[type[WBValue]] = set()
        while frontier:
            option = frontier.pop()
            explored.add(option)
            if option._log_type is not None:
                mapping[option._log_type] = option
            frontier.extend(s for s in option.__subclasses__() if s not in explored)
        return mapping

    @staticmethod
    def init_from_json(json_obj: dict[str, Any], reader: Reader) -> WBValue | None:
        """Rebuild a value of whichever class wrote *json_obj*; None for an unknown type."""
        option = WBValue.type_mapping().get(json_obj["_type"])
        if option is None:
            return None
        obj = option.from_json(json_obj, reader)
        obj._set_artifact_source(reader.artifact, None)
        return obj

    def _set_artifact_source(self, artifact: ArtifactFiles, name: str | None) -> None:
        self._artifact_source = (artifact, name)

    def _set_artifact_target(self, artifact: ArtifactFiles, name: str | None) -> None:
        self._artifact_target = (artifact, name)

    def __eq__(self, other: object) -> bool:
        return self is other

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)

    __hash__ = object.__hash__


class Media(WBValue):
    """A value whose content is a file stored beside its JSON (an image)."""

    _path: str | None
    _sha256: str | None
    _size: int | None
    _is_tmp: bool
    _extension: str | None

    def __init__(self, caption: str | None = None) -> None:
        super().__init__()
        self._path = None
        self._sha256 = None
        self._size = None
        self._is_tmp = False
        self._extension = None
        self._caption = caption
        # The entry path this file had in the artifact it was read from, if any.
        self._stored_path: str | None = None

    def _set_file(self, path: str, *, is_tmp: bool = False, extension: str | None = None) -> None:
        self._path = path
        self._is_tmp = is_tmp
        self._extension = extension
        with open(path, "rb") as handle:
            self._sha256 = hashlib.file_digest(handle, "sha256").hexdigest()
        self._size = os.path.getsize(path)

    @classmethod
    def get_media_subdir(cls) -> str:
        raise NotImplementedError

    def file_is_set(self) -> bool:
        return self._path is not None and self._sha256 is not None

    @staticmethod
    def path_is_reference(path: str | None) -> bool:
        return bool(path) and str(path).startswith(("gs://", "s3://", "http://", "https://"))

    def to_json(self, writer: Writer) -> dict[str, Any]:
        json_obj: dict[str, Any] = {}
        if self._caption is not None:
            json_obj["caption"] = self._caption
        if self._path is not None and self._sha256 is not None:
            name = writer.added_path_of(self._path)
            if name is None and self._stored_path is not None:
                # Read from an artifact: stored again under the same path, so a table that
                # is read and written back keeps its bytes.
                name = writer.add_file(self._path, self._stored_path).path
            elif name is None:
                subdir = self.get_media_subdir()
                base_name = os.path.basename(self._path)
                if self._is_tmp:
                    name = f"{subdir}/{base_name}"
                else:
                    # The hash prefix keeps dir1/img.png and dir2/img.png apart.
                    name = f"{subdir}/{self._sha256[:20]}/{base_name}"
                if self.path_is_reference(self._path):
                    name = writer.add_reference(self._path, name).path
                else:
                    name = writer.add_file(self._path, name, is_tmp=self._is_tmp).path
            json_obj["path"] = name
            json_obj["sha256"] = self._sha256
        json_obj["_type"] = self._log_type
        return json_obj

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, self.__class__)
            and self._sha256 is not None
            and self._sha256 == other._sha256
        )

    __hash__ = object.__hash__


_media_tmp: tempfile.TemporaryDirectory[str] | None = None
_media_tmp_lock = threading.Lock()


def media_tmp_dir() -> str:
    """A folder for media rendered from data (arrays, PIL images); it lives as the process."""
    global _media_tmp
    with _media_tmp_lock:
        if _media_tmp is None:
            _media_tmp = tempfile.TemporaryDirectory(prefix="soko-media-")
        return _media_tmp.name


def check(condition: bool, message: str) -> None:
    """Raise a :class:`ValidationError` with *message* unless *condition* holds."""
    if not condition:
        raise ValidationError(message)
