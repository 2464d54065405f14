"""ManifestEntry: the SDK's view of one entry, as W&B's ``ArtifactManifestEntry`` shows it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from soko.core.manifest import Entry

if TYPE_CHECKING:
    from soko.sdk.artifact import Artifact


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
    _artifact: Artifact | None = field(default=None, repr=False)

    @classmethod
    def of(
        cls, entry: Entry, *, local_path: str | None = None, artifact: Artifact | None = None
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

    def parent_artifact(self) -> Artifact:
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
