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
    can ``download()`` itself.
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
