"""Repairing a store after a check (``soko verify --repair``): every blob the check found
damaged (and set aside) or missing is stored again from an intact copy found elsewhere.

Where copies are looked for is the caller's choice: *sources* are callables that open a
copy of a blob's bytes, or return None. The command line passes the client's download
cache; this layer knows nothing of it. A copy is checked against the digest while it is
stored (:meth:`~soko.storage.base.BlobStore.put_stream`), so a damaged copy is refused and
the next source is asked.

This module must not import the client, SDK or server layers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import BinaryIO

from soko.core.digests import Digest
from soko.errors import DigestMismatchError
from soko.service.fsck import FsckReport, Problem
from soko.service.store import Store

CopySource = Callable[[Digest], BinaryIO | None]
"""Opens a copy of a blob's bytes (not checked yet), or returns None when it has none."""

REPAIRABLE = frozenset({"corrupt_blob", "missing_blob", "missing_manifest"})
"""The problems a copy of a blob's bytes repairs."""


@dataclass
class RepairReport:
    restored: list[Problem] = field(default_factory=list)
    """The blob problems repaired: their blobs are stored again."""
    unrepaired: list[Problem] = field(default_factory=list)
    """The blob problems no intact copy was found for."""

    @property
    def broken_versions(self) -> list[str]:
        """The versions that still lack a blob."""
        return sorted({name for problem in self.unrepaired for name in problem.versions})


def repair_store(
    store: Store, report: FsckReport, *, sources: Sequence[CopySource]
) -> RepairReport:
    """Store again, from the first of *sources* that has an intact copy, every blob that
    *report* (from :func:`soko.service.fsck.check_store`) found damaged or missing."""
    result = RepairReport()
    for problem in report.problems:
        if problem.kind not in REPAIRABLE or problem.digest is None:
            continue
        if _restore(store, problem.digest, sources):
            result.restored.append(problem)
        else:
            result.unrepaired.append(problem)
    if result.restored:
        store.blobs.sync()
    return result


def _restore(store: Store, digest: Digest, sources: Sequence[CopySource]) -> bool:
    if not store.blobs.missing([digest]):
        # Still there: a store without a quarantine keeps a damaged blob (it cannot be
        # replaced), or a log stored it again since the check.
        return store.blob_intact(digest)
    for source in sources:
        copy = source(digest)
        if copy is None:
            continue
        try:
            with copy:
                store.blobs.put_stream(digest, copy)
        except DigestMismatchError:
            continue  # a damaged copy too: ask the next source
        return True
    return False
