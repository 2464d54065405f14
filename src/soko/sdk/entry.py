"""ManifestEntry: the SDK's view of one entry, as W&B's ``ArtifactManifestEntry`` shows it;
and :class:`ArtifactFiles`, the artifact as its entries and stored values use it.

The artifact module imports this one, never the other way: an entry and a value reach the
artifact they belong to only through :class:`ArtifactFiles`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Protocol

from soko.core.manifest import Entry, Manifest


class ArtifactFiles(Protocol):
    """What an entry and a stored value (``soko.data_types``) use of their artifact:
    :class:`soko.Artifact` is one."""

    @property
    def name(self) -> str: ...
    @property
    def manifest(self) -> Manifest: ...
    def is_draft(self) -> bool: ...
    def get_entry(self, name: str) -> ManifestEntry:
        """The entry at *name*; KeyError when there is none."""
        ...

    def get_added_local_path_name(self, local_path: str) -> str | None: ...
    def add_file(
        self,
        local_path: str | os.PathLike[str],
        name: str | None = None,
        is_tmp: bool | None = False,
        skip_cache: bool | None = False,
        policy: str | None = "mutable",
        overwrite: bool = False,
    ) -> ManifestEntry: ...
    def add_reference(self, uri: str, name: str | None = None) -> list[ManifestEntry]: ...
    def _download_entry(self, path: str, *, root: str | None) -> str:
        """Download the entry *path* under *root* (default: the artifact's root)."""
        ...


@dataclass(eq=False)
class ManifestEntry:
    """One path of an artifact: ``path``, ``digest``, ``size``, ``ref``, ``extra``.

    ``local_path`` is the file a draft entry was added from. An entry of a logged artifact
    can ``download()`` itself. Made directly (W&B's ``ArtifactManifestEntry(path=…,
    digest=…, local_path=…)``, for ``artifact.manifest.add_entry``), an entry with a
    ``local_path`` and no ``size`` takes the file's size, and a file that does not exist
    raises FileNotFoundError, as in W&B.
    """

    path: str
    digest: str
    size: int | None = None
    ref: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    birth_artifact_id: str | None = None
    local_path: str | None = None
    skip_cache: bool = False
    _artifact: ArtifactFiles | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.local_path is not None:
            self.local_path = os.fspath(self.local_path)
            if self.size is None:
                self.size = os.path.getsize(self.local_path)
        size = self.size
        if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 0):
            raise ValueError(f"The size of entry {self.path!r} must be an int >= 0, not {size!r}.")

    @classmethod
    def of(
        cls,
        entry: Entry,
        *,
        local_path: str | None = None,
        artifact: ArtifactFiles | None = None,
    ) -> ManifestEntry:
        return cls(
            path=entry.path,
            digest=entry.digest,
            size=entry.size,
            ref=entry.ref,
            extra=dict(entry.extra),
            birth_artifact_id=entry.birth_artifact_id,
            local_path=local_path,
            _artifact=artifact,
        )

    def to_json(self) -> dict[str, Any]:
        """The entry as W&B's ``ArtifactManifestEntry.to_json()`` gives it (every field
        that is set, ``birthArtifactID`` by its manifest name); the manifest's own form of
        an entry is ``artifact.manifest.to_manifest_json()["contents"][path]``."""
        data: dict[str, Any] = {"path": self.path, "digest": self.digest}
        if self.ref is not None:
            data["ref"] = self.ref
        if self.birth_artifact_id is not None:
            data["birthArtifactID"] = self.birth_artifact_id
        if self.size is not None:
            data["size"] = self.size
        data["extra"] = dict(self.extra)
        if self.local_path is not None:
            data["local_path"] = self.local_path
        data["skip_cache"] = self.skip_cache
        return data

    def to_core(self) -> Entry:
        return Entry(
            path=self.path,
            digest=self.digest,
            size=self.size,
            ref=self.ref,
            extra=dict(self.extra),
            birth_artifact_id=self.birth_artifact_id,
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ManifestEntry):
            return NotImplemented
        return self.to_core() == other.to_core()

    def __hash__(self) -> int:
        return hash((self.path, self.digest, self.ref))

    @property
    def name(self) -> str:
        return self.path

    def parent_artifact(self) -> ArtifactFiles:
        if self._artifact is None:
            raise LookupError("This entry does not belong to an artifact.")
        return self._artifact

    def ref_url(self) -> str:
        """The URI of a reference entry."""
        if self.ref is None:
            raise ValueError(f"{self.path!r} is not a reference.")
        return self.ref

    def ref_target(self) -> str:
        return self.ref_url()

    def download(self, root: str | None = None, skip_cache: bool | None = None) -> str:
        """Download this entry under *root* (default: the artifact's root); returns its path."""
        return self.parent_artifact()._download_entry(self.path, root=root)
