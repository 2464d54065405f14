"""The draft half of ``soko.Artifact``'s API: W&B's ``add_*``, ``new_file`` and
``remove``, each applied to the artifact's :class:`~soko.sdk.draft.Draft` all-or-nothing
(:mod:`soko.sdk.adding` hashes the files), refused once the artifact is logged or
finalized."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import replace
from typing import IO, Any

from soko.core.manifest import Entry
from soko.core.names import logical_path, validate_artifact_path
from soko.errors import ArtifactFinalizedError
from soko.refs.base import handler_for
from soko.sdk import adding
from soko.sdk.adding import check_policy
from soko.sdk.downloads import Downloadable
from soko.sdk.draft import Draft
from soko.sdk.entry import ArtifactFiles, ManifestEntry


class DraftEditing(Downloadable):
    """Mixed into :class:`soko.Artifact`, which sets the draft and the finalized flag."""

    _draft: Draft | None
    _final: bool
    _name: str

    def _as_files(self) -> ArtifactFiles:
        """The artifact as its entries see it (:class:`soko.Artifact` is one)."""
        raise NotImplementedError

    def _add_manifest_entry(self, entry: ManifestEntry, *, overwrite: bool) -> None:
        draft = self._editable("add_entry")
        core = replace(entry.to_core(), path=validate_artifact_path(entry.path))
        local = entry.local_path if core.ref is None else None
        draft.add_entry(core, local_path=local, overwrite=overwrite)

    def _remove_manifest_entry(self, path: str) -> None:
        draft = self._editable("remove_entry")
        if draft.get(path) is None:
            raise FileNotFoundError(f"Cannot remove missing entry: {path!r}")
        draft.remove(path)

    def is_draft(self) -> bool:
        return self._record is None and self._pending is None and not self._final

    def finalize(self) -> None:
        """Freeze the draft: later changes raise :class:`ArtifactFinalizedError`."""
        self._final = True

    def _editable(self, method: str) -> Draft:
        if self._final or self._draft is None or self._pending or self._record:
            raise ArtifactFinalizedError(f"Artifact.{method}", self)
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
        check_policy(policy)
        local = os.fspath(local_path)
        entry = adding.add_file(
            draft, local, name, is_tmp=bool(is_tmp), policy=policy, overwrite=overwrite
        )
        return ManifestEntry.of(entry, local_path=local, artifact=self._as_files())

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
        check_policy(policy)
        adding.add_dir(
            draft,
            os.fspath(local_path),
            name,
            policy=policy,
            merge=merge,
            collection=self._name,
        )

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
            name = validate_artifact_path(name)
        entries = handler_for(uri_text).entries(
            uri_text, name=name, checksum=checksum, max_objects=max_objects
        )
        draft.add_references(entries)
        return [ManifestEntry.of(e, artifact=self._as_files()) for e in entries]

    @contextlib.contextmanager
    def new_file(
        self, name: str, mode: str = "x", encoding: str | None = None, policy: str = "mutable"
    ) -> Iterator[IO[Any]]:
        """Open a new file; when the block ends it is added to the artifact as *name*."""
        draft = self._editable("new_file")
        path = validate_artifact_path(name)
        overwrite = "x" not in mode
        # No check against the draft's entries here: as in W&B, mode "x" refuses only a
        # second new_file of the name, and add_file then applies the same-content rule.
        with adding.new_file(draft, name, path, mode, encoding) as (handle, local):
            yield handle
        # The file is soko's own: nobody else can change it before the upload.
        self.add_file(local, name=path, skip_cache=True, overwrite=overwrite, policy="immutable")

    def remove(self, item: str | os.PathLike[str] | ManifestEntry | Entry) -> None:
        """Remove an entry (also one of ``manifest.entries``), or every entry under a
        folder; FileNotFoundError if none."""
        draft = self._editable("remove")
        path = item.path if isinstance(item, ManifestEntry | Entry) else logical_path(item)
        if not draft.remove(str(path).replace(os.sep, "/")):
            raise FileNotFoundError(f"No such file or directory: {path}")

    def get_added_local_path_name(self, local_path: str) -> str | None:
        """The artifact path under which the local file *local_path* was added."""
        if self._draft is None:
            return None
        return self._draft.added_local_path_name(os.fspath(local_path))
