"""``artifact.manifest``: W&B's ``ArtifactManifest`` (v1) API over soko's manifest.

:class:`ArtifactManifest` *is* a :class:`soko.core.manifest.Manifest` (path-ordered,
canonical encoding, version digest), so everything soko does with a manifest works on it,
and it adds what W&B's manifest offers its users: ``to_manifest_json()``,
``add_entry()``/``remove_entry()`` (on a draft's manifest, they change the draft),
``get_entry_by_path()``, ``get_entries_in_directory()``, ``version()``,
``storage_policy`` and ``from_manifest_json()``. ``size`` answers as W&B's ``size()``
method and as soko's attribute alike.

It reaches its artifact only through :class:`ManifestOwner`; the artifact module imports
this one, never the other way.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Protocol

from soko.core.digests import Algorithm
from soko.core.manifest import STORAGE_POLICY, Manifest
from soko.errors import ArtifactFinalizedError
from soko.sdk.entry import ArtifactFiles, ManifestEntry


class ManifestOwner(ArtifactFiles, Protocol):
    """The artifact a manifest belongs to, as the manifest edits it."""

    def _add_manifest_entry(self, entry: ManifestEntry, *, overwrite: bool) -> None:
        """Add *entry* to the draft (ArtifactFinalizedError once logged)."""
        ...

    def _remove_manifest_entry(self, path: str) -> None:
        """Remove the entry at exactly *path* from the draft; FileNotFoundError if none."""
        ...

    def _draft_manifest(self) -> Manifest:
        """The draft's entries as they are now."""
        ...


class Size(int):
    """A manifest's size in bytes: an int, which W&B code may also call (``size()``)."""

    def __call__(self) -> int:
        return int(self)


class StoragePolicy:
    """The storage policy a manifest names: W&B's ``wandb-storage-policy-v1``."""

    def __init__(self, config: Mapping[str, Any]) -> None:
        self._config = dict(config)

    @classmethod
    def name(cls) -> str:
        return STORAGE_POLICY

    def config(self) -> dict[str, Any]:
        return dict(self._config)


class ArtifactManifest(Manifest):
    """The entries of an artifact, with W&B's manifest methods (see the module)."""

    _owner: ManifestOwner | None
    _CACHED: ClassVar[tuple[str, ...]] = ("_digest", "_blob_digests", "_blob_sizes")

    @classmethod
    def view(cls, manifest: Manifest, *, owner: ManifestOwner | None = None) -> ArtifactManifest:
        """*manifest* as an ArtifactManifest of *owner*, sharing its entries (no copy)."""
        viewed = object.__new__(cls)
        # Fields and the values already computed (digests) come along as they are.
        viewed.__dict__.update(manifest.__dict__)
        object.__setattr__(viewed, "_owner", owner)
        return viewed

    @classmethod
    def from_manifest_json(
        cls, manifest_json: Mapping[str, Any], digest_algorithm: str | Algorithm = Algorithm.MD5
    ) -> ArtifactManifest:
        """A manifest read from its JSON form (a ValidationError, a ValueError, if it is not
        a version 1 manifest); it belongs to no artifact."""
        return cls.view(Manifest.from_json(manifest_json, _algorithm(digest_algorithm)))

    @classmethod
    def version(cls) -> int:
        return 1

    @property
    def storage_policy(self) -> StoragePolicy:
        return StoragePolicy(self.storage_policy_config)

    @property
    def digest_algorithm(self) -> str:
        return self.algorithm.value

    @property
    def size(self) -> Size:
        return Size(super().size)

    def __eq__(self, other: object) -> bool:
        # As a Manifest: a view equals the manifest it shows.
        if not isinstance(other, Manifest):
            return NotImplemented
        return (self.entries, self.algorithm, self.storage_policy_config) == (
            other.entries,
            other.algorithm,
            other.storage_policy_config,
        )

    __hash__ = Manifest.__hash__

    def to_manifest_json(self) -> dict[str, Any]:
        """W&B's manifest JSON (the content of ``wandb_manifest.json``): ``version``,
        ``storagePolicy``, ``storagePolicyConfig`` and ``contents``, entries in path order."""
        return self.to_json()

    def get_entry_by_path(self, path: str) -> ManifestEntry | None:
        entry = self.entries.get(path)
        return None if entry is None else ManifestEntry.of(entry, artifact=self._owner)

    def get_entries_in_directory(self, directory: str) -> list[ManifestEntry]:
        prefix = f"{directory}/"
        return [
            ManifestEntry.of(entry, artifact=self._owner)
            for path, entry in self.entries.items()
            if path.startswith(prefix)
        ]

    def add_entry(self, entry: ManifestEntry, overwrite: bool = False) -> None:
        """Add *entry* to the draft this manifest belongs to: a path already there with
        another digest raises ValueError unless *overwrite*. An entry with a
        ``local_path`` is uploaded from that file when the artifact is logged; one with
        neither a file nor a ``ref`` names a blob the store must hold already (an entry
        of another logged artifact)."""
        self._editor("add_entry")._add_manifest_entry(entry, overwrite=overwrite)
        self._refresh()

    def remove_entry(self, entry: ManifestEntry) -> None:
        """Remove the entry at ``entry.path``; FileNotFoundError when there is none."""
        self._editor("remove_entry")._remove_manifest_entry(entry.path)
        self._refresh()

    def _editor(self, method: str) -> ManifestOwner:
        if self._owner is None:
            raise ArtifactFinalizedError(
                f"'{method}' needs the manifest of a draft artifact; this one belongs to none."
            )
        return self._owner

    def _refresh(self) -> None:
        """Show the draft as it is now: W&B's manifest is the draft's, edited in place."""
        assert self._owner is not None
        current = self._owner._draft_manifest()
        for name in self._CACHED:
            self.__dict__.pop(name, None)
        self.__dict__.update(current.__dict__)


def _algorithm(value: str | Algorithm | Any) -> Algorithm:
    """W&B passes an enum whose value is ``MANIFEST_MD5``/``MANIFEST_XXH128``."""
    text = getattr(value, "value", value)
    if isinstance(text, str) and text.upper().startswith("MANIFEST_"):
        text = text[len("MANIFEST_") :]
    return Algorithm.parse(text)
