"""``soko.Artifact``: W&B's artifact API, as a draft and once logged.

A draft collects entries (files hashed in place, references resolved by their handler);
logging hands its manifest and the local sources of its files to the backend. A logged
artifact reads its attributes from the version it was loaded from.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from typing import IO, Any

from soko.client.hashing import hash_file, hash_files
from soko.core.digests import Algorithm
from soko.core.manifest import Manifest
from soko.core.names import (
    validate_aliases,
    validate_artifact_path,
    validate_metadata,
    validate_name,
    validate_tags,
    validate_ttl,
    validate_type,
)
from soko.errors import ArtifactFinalizedError, ValidationError
from soko.refs.base import handler_for
from soko.sdk.draft import Draft
from soko.sdk.entry import ManifestEntry

_POLICIES = ("mutable", "immutable")


def _check_policy(policy: str | None) -> None:
    if policy is not None and policy not in _POLICIES:
        raise ValidationError(
            f"Invalid policy {policy!r}. Policy may only be `mutable` or `immutable`."
        )


class Artifact:
    """A versioned set of files and references: ``Artifact(name, type, ...)``.

    ``digest_algorithm`` is ``"XXH128"`` (soko's default, much faster to hash) or ``"MD5"``
    (W&B's default); both produce manifests W&B reads.
    """

    def __init__(
        self,
        name: str,
        type: str,
        description: str | None = None,
        metadata: dict[str, Any] | None = None,
        incremental: bool = False,
        use_as: str | None = None,
        storage_region: str | None = None,
        digest_algorithm: str = "XXH128",
        **_ignored: Any,
    ) -> None:
        self._name = validate_name(name)
        self._type = validate_type(type, name)
        self._description = description
        self._metadata = validate_metadata(metadata)
        self._incremental = incremental
        self._algorithm = Algorithm.parse(digest_algorithm)
        self._draft: Draft | None = Draft(self._algorithm)
        self._final = False
        self._ttl: int | None = None
        self._aliases: list[str] = []
        self._tags: list[str] = []
        self._manifest: Manifest | None = None

    def __repr__(self) -> str:
        return f"<Artifact {self._name}>"

    # ----- identity -------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self._name

    @property
    def type(self) -> str:
        return self._type

    @property
    def digest_algorithm(self) -> str:
        return self._algorithm.value

    @property
    def incremental(self) -> bool:
        return self._incremental

    # ----- settable attributes --------------------------------------------------------

    @property
    def description(self) -> str | None:
        return self._description

    @description.setter
    def description(self, value: str | None) -> None:
        if value is not None and not isinstance(value, str):
            raise ValidationError("An artifact description must be a string or None.")
        self._description = value

    @property
    def metadata(self) -> dict[str, Any]:
        return self._metadata

    @metadata.setter
    def metadata(self, value: dict[str, Any] | None) -> None:
        self._metadata = validate_metadata(value)

    @property
    def ttl(self) -> Any:
        import datetime

        return None if self._ttl is None else datetime.timedelta(seconds=self._ttl)

    @ttl.setter
    def ttl(self, value: Any) -> None:
        self._ttl = validate_ttl(value)

    @property
    def aliases(self) -> list[str]:
        return self._aliases

    @aliases.setter
    def aliases(self, value: Sequence[str]) -> None:
        self._aliases = validate_aliases(value)

    @property
    def tags(self) -> list[str]:
        return self._tags

    @tags.setter
    def tags(self, value: Sequence[str]) -> None:
        self._tags = validate_tags(value)

    # ----- the manifest ---------------------------------------------------------------

    @property
    def manifest(self) -> Manifest:
        if self._draft is not None:
            return self._draft.builder.build()
        assert self._manifest is not None
        return self._manifest

    @property
    def size(self) -> int:
        return self.manifest.size

    @property
    def digest(self) -> str:
        return self.manifest.digest()

    @property
    def file_count(self) -> int:
        return len(self._draft.builder) if self._draft is not None else len(self.manifest)

    # ----- draft editing --------------------------------------------------------------

    def is_draft(self) -> bool:
        return self._draft is not None and not self._final

    def finalize(self) -> None:
        """Freeze the draft: later changes raise :class:`ArtifactFinalizedError`."""
        self._final = True

    def _editable(self, method: str) -> Draft:
        if self._final or self._draft is None:
            raise ArtifactFinalizedError(
                f"'{method}' cannot be used on {self._name!r}: it is finalized. "
                "Call new_draft() to make a new version."
            )
        return self._draft

    def add_file(
        self,
        local_path: str | os.PathLike[str],
        name: str | None = None,
        is_tmp: bool | None = False,
        skip_cache: bool | None = False,
        policy: str | None = "mutable",
        overwrite: bool = False,
    ) -> ManifestEntry:
        """Add one local file; ``name`` defaults to its base name."""
        draft = self._editable("add_file")
        _check_policy(policy)
        local = os.fspath(local_path)
        if not os.path.isfile(local):
            raise ValidationError(f"Path is not a file: {local!r}")
        path = validate_artifact_path(name or os.path.basename(local))
        hashed = hash_file(local, self._algorithm)
        if is_tmp:
            folder, _, file_name = path.rpartition("/")
            parts = file_name.split(".")
            parts[0] = hashed.digest.hex[:20]
            path = f"{folder}/{'.'.join(parts)}" if folder else ".".join(parts)
        (entry,) = draft.add_files([(path, hashed)], overwrite=overwrite, skip_cache=bool(skip_cache))
        return ManifestEntry.of(entry, local_path=local, artifact=self)

    def add_dir(
        self,
        local_path: str | os.PathLike[str],
        name: str | None = None,
        skip_cache: bool | None = False,
        policy: str | None = "mutable",
        merge: bool = False,
    ) -> None:
        """Add every file under a folder, named by its path below it (under ``name/``)."""
        draft = self._editable("add_dir")
        _check_policy(policy)
        root = os.fspath(local_path)
        if not os.path.isdir(root):
            raise ValidationError(f"Path is not a directory: {root!r}")
        physical: list[str] = []
        logical: list[str] = []
        for dirpath, _dirs, files in os.walk(root, followlinks=True):
            for file_name in files:
                full = os.path.join(dirpath, file_name)
                relative = os.path.relpath(full, root).replace(os.sep, "/")
                logical.append(validate_artifact_path(f"{name}/{relative}" if name else relative))
                physical.append(full)
        hashed = hash_files(physical, self._algorithm)
        draft.add_files(list(zip(logical, hashed, strict=True)), overwrite=merge,
                        skip_cache=bool(skip_cache))

    def add_reference(
        self,
        uri: str | ManifestEntry,
        name: str | None = None,
        checksum: bool = True,
        max_objects: int | None = None,
    ) -> list[ManifestEntry]:
        """Track a URI without copying it: file://, http(s)://, s3://, gs:// or any scheme."""
        draft = self._editable("add_reference")
        uri_text = uri.ref_url() if isinstance(uri, ManifestEntry) else str(uri)
        if name is not None:
            name = validate_artifact_path(str(name))
        entries = handler_for(uri_text).entries(
            uri_text, name=name, checksum=checksum, max_objects=max_objects
        )
        draft.add_references(entries)
        return [ManifestEntry.of(e, artifact=self) for e in entries]

    @contextlib.contextmanager
    def new_file(
        self, name: str, mode: str = "x", encoding: str | None = None, policy: str = "mutable"
    ) -> Iterator[IO[Any]]:
        """Open a new file; when the block ends it is added to the artifact as *name*."""
        draft = self._editable("new_file")
        path = validate_artifact_path(name)
        overwrite = "x" not in mode
        if not overwrite and path in draft.builder:
            raise ValidationError(f"File with name {name!r} already exists in the artifact.")
        local = os.path.join(draft.tmp_dir(), *path.split("/"))
        os.makedirs(os.path.dirname(local), exist_ok=True)
        try:
            with open(local, mode, encoding=encoding) as handle:
                yield handle
        except FileExistsError:
            raise ValidationError(f"File with name {name!r} already exists at {local!r}") from None
        self.add_file(local, name=path, skip_cache=True, overwrite=overwrite)

    def remove(self, item: str | os.PathLike[str] | ManifestEntry) -> None:
        """Remove an entry, or every entry under a folder; FileNotFoundError if none."""
        draft = self._editable("remove")
        path = item.path if isinstance(item, ManifestEntry) else os.fspath(item)
        if not draft.remove(str(path).replace(os.sep, "/")):
            raise FileNotFoundError(f"No such file or directory: {path}")

    def get_added_local_path_name(self, local_path: str) -> str | None:
        """The artifact path under which the local file *local_path* was added."""
        if self._draft is None:
            return None
        return self._draft.added_local_paths.get(os.fspath(local_path))

    def get_entry(self, name: str | os.PathLike[str]) -> ManifestEntry:
        """The entry at *name*; KeyError when the artifact has none."""
        path = str(name).replace(os.sep, "/")
        if self._draft is not None:
            entry = self._draft.builder.get(path)
            source = self._draft.sources.get(path)
            local = source.local_path if source else None
        else:
            entry = self.manifest.get(path)
            local = None
        if entry is None:
            raise KeyError(f"Path not contained in artifact: {path}")
        return ManifestEntry.of(entry, local_path=local, artifact=self)

    def get_path(self, name: str | os.PathLike[str]) -> ManifestEntry:
        """Deprecated in W&B; the same as :meth:`get_entry`."""
        return self.get_entry(name)

    def _download_entry(self, path: str, *, root: str | None) -> str:
        raise ArtifactFinalizedError(
            f"{self._name!r} has not been logged; only a logged artifact can be downloaded."
        )
