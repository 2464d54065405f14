"""Downloading a logged version: ``download``, ``checkout`` and ``verify`` of W&B's
artifact API, on the version's manifest and the backend it lives in."""

from __future__ import annotations

import os
from collections.abc import Collection
from typing import Any

from soko.client.connect import get_stat_cache
from soko.client.pygc import python_gc_paused
from soko.core.manifest import Entry, Manifest
from soko.core.records import VersionRecord
from soko.sdk import transfer
from soko.sdk.logged import LoggedVersion
from soko.sdk.progress import progress_bar
from soko.terminal import termwarn

PAGE = 10_000
"""Entries asked for at a time by a download of a path prefix."""


class Downloadable(LoggedVersion):
    """A logged version whose files can be fetched into a folder and checked there."""

    @property
    def manifest(self) -> Manifest:
        """The version's entries (``soko.Artifact`` gives W&B's manifest API on them)."""
        raise NotImplementedError

    def _manifest_loaded(self) -> bool:
        """Whether this process holds the version's manifest already."""
        return True

    def _entries_under(self, record: VersionRecord, path_prefix: str | None) -> Collection[Entry]:
        """The entries a download of *path_prefix* fetches: a page at a time from the
        backend (only those under the prefix are read) unless the manifest is at hand."""
        if not path_prefix or self._manifest_loaded() or record.manifest_blob is None:
            return transfer.select_entries(self.manifest, path_prefix)
        backend = self._live_backend()
        found: list[Entry] = []
        after: str | None = None
        while True:
            page = backend.manifest_page(record, prefix=path_prefix, after=after, limit=PAGE)
            found.extend(page.entries)
            if page.next_after is None:
                return found
            after = page.next_after

    def _root(self, root: str | os.PathLike[str] | None, record: VersionRecord) -> str:
        """*root*, or the default ``./artifacts/<name>:<version>``."""
        if root is not None:
            return os.fspath(root)
        return transfer.default_root(self._name, record.version)

    def download(
        self,
        root: str | os.PathLike[str] | None = None,
        allow_missing_references: bool = False,
        skip_cache: bool | None = None,
        path_prefix: str | None = None,
        **_ignored: Any,
    ) -> str:
        """Fetch the files into *root* (default ``./artifacts/<name>:<version>``); files
        already there and unchanged are kept as they are; other files are left alone.

        *skip_cache* (as in W&B): from a server, the files go straight into *root*, past
        the local download cache, which is neither read nor written."""
        record = self._require_logged("download")
        target = self._root(root, record)
        with (
            python_gc_paused(),
            progress_bar(f"Downloading {self._name}:{record.version}") as bar,
        ):
            transfer.download_entries(
                self._live_backend(),
                self._entries_under(record, path_prefix),
                target,
                cache=get_stat_cache(),
                allow_missing_references=allow_missing_references,
                progress=bar,
                use_cache=not skip_cache,
            )
        return target

    def checkout(self, root: str | os.PathLike[str] | None = None) -> str:
        """Make *root* hold exactly this artifact: download, then remove extra files."""
        target = self._root(root, self._require_logged("checkout"))
        transfer.remove_extra(self.manifest, target) if os.path.isdir(target) else None
        return self.download(target)

    def verify(self, root: str | os.PathLike[str] | None = None) -> None:
        """Raise ValueError when a file in *root* differs from the manifest or is extra."""
        target = self._root(root, self._require_logged("verify"))
        transfer.verify_root(self.manifest, target, cache=get_stat_cache())
        if references := sum(1 for entry in self.manifest if entry.ref is not None):
            termwarn(f"skipped verification of {references} refs")
