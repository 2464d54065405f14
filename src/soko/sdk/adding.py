"""Hashing the local files an artifact adds: each read once, and stored as it is read where
the backend can.

The stat cache answers for files hashed before (inode, size, mtime, ctime). With
``policy="mutable"`` (W&B's staging copy) and a backend that captures while hashing (the
embedded store, :class:`~soko.client.backend.CapturesWhileHashing`), the files are stored as
they are hashed (:mod:`soko.client.capture`), and the draft keeps none of their bytes. The
backend is the current run's, else the one the settings name: the one a log will most
likely go to. A log through another backend finds those blobs missing and stores them from
the added files, as it would any other.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import NamedTuple

from soko.client.backend import CapturesWhileHashing, Progress
from soko.client.connect import get_backend, get_stat_cache
from soko.client.hashing import Capture, HashedFile, hash_files_cached
from soko.client.listing import naming_unreadable
from soko.errors import SokoError, ValidationError
from soko.sdk.draft import Draft
from soko.sdk.runbase import current_run

POLICIES = ("mutable", "immutable")


class Hashed(NamedTuple):
    files: list[HashedFile]
    """In the order of the paths given."""
    stored: bool
    """The store took the bytes as they were hashed: the draft need not keep them."""


def check_policy(policy: str | None) -> None:
    if policy is not None and policy not in POLICIES:
        raise ValidationError(
            f"Invalid policy {policy!r}. Policy may only be `mutable` or `immutable`."
        )


def hash_local(
    draft: Draft,
    paths: Sequence[str],
    *,
    policy: str | None,
    progress: Progress | None = None,
) -> Hashed:
    """Hash the files at *paths* for *draft* (in its algorithm), keeping the bytes of small
    ones within the draft's budget, storing them too when *policy* is mutable."""
    with naming_unreadable(paths), _capturing(policy) as capture:
        files = hash_files_cached(
            paths,
            draft.algorithm,
            get_stat_cache(),
            progress=progress,
            keep_bytes=draft.held_budget(),
            capture=capture,
        )
    return Hashed(files, capture is not None)


@contextlib.contextmanager
def _capturing(policy: str | None) -> Iterator[Capture | None]:
    """A capture of the backend a log will most likely go to, for ``policy="mutable"``,
    when it captures while hashing; None otherwise."""
    if policy == "immutable":
        yield None
        return
    run = current_run()
    try:
        backend = run.log_queue.backend if run is not None else get_backend()
        capture = backend.begin_capture() if isinstance(backend, CapturesWhileHashing) else None
    except SokoError:
        # No usable store yet (a bad setting, say): hash only; the log reports the problem.
        capture = None
    if capture is None:
        yield None
        return
    try:
        yield capture
    except BaseException:
        capture.abandon()
        raise
    capture.close()
