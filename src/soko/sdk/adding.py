"""Adding local files to a draft: each read once to hash it, and stored as it is read where
the backend can (``Artifact.add_file``, ``add_dir``, ``new_file``).

The stat cache answers for files hashed before (inode, size, mtime, ctime). With
``policy="mutable"`` (W&B's staging copy) and a backend that captures while hashing (the
embedded store, :class:`~soko.client.backend.CapturesWhileHashing`), the files are stored as
they are hashed (:mod:`soko.client.capture`), and the draft keeps none of their bytes. The
backend is the current run's, else the one the settings name: the one a log will most
likely go to. A log through another backend finds those blobs missing and stores them from
the added files, as it would any other. Through a server, ``add_dir`` inside a run sends
the small files to the run's project as it hashes them
(:class:`~soko.client.backend.UploadsWhileHashing`, :mod:`soko.client.http_capture`).
"""

from __future__ import annotations

import contextlib
import os
from array import array
from collections.abc import Iterator, Sequence
from typing import IO, Any, NamedTuple

from soko.client.backend import (
    CapturesWhileHashing,
    Progress,
    StagingCapture,
    UploadsWhileHashing,
)
from soko.client.connect import get_backend, get_stat_cache
from soko.client.hashing import Capture, HashedFile, hash_files_cached, hash_packed
from soko.client.listing import folder_base, naming_unreadable, walk_names
from soko.client.pygc import python_gc_paused
from soko.core.digests import Digest
from soko.core.manifest import Entry
from soko.core.names import SEGMENT_MAX_BYTES, validate_artifact_path
from soko.errors import SokoError, ValidationError
from soko.sdk.draft import Draft
from soko.sdk.progress import progress_bar
from soko.sdk.runbase import current_run
from soko.terminal import termerror

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


def add_file(
    draft: Draft,
    local: str,
    name: str | None,
    *,
    is_tmp: bool,
    policy: str | None,
    overwrite: bool,
) -> Entry:
    """Add the local file *local* as *name* (default: its base name); with *is_tmp* its
    base name becomes its digest's start, as W&B names the tables it links."""
    if not os.path.isfile(local):
        raise ValidationError(f"Path is not a file: {local!r}")
    path = validate_artifact_path(name or os.path.basename(local))
    with progress_bar(f"Hashing {os.path.basename(local)}") as bar:
        (hashed,), stored = hash_local(draft, [local], policy=policy, progress=bar)
    if is_tmp:
        folder, _, file_name = path.rpartition("/")
        parts = file_name.split(".")
        parts[0] = hashed.digest.hex[:20]
        path = f"{folder}/{'.'.join(parts)}" if folder else ".".join(parts)
    (entry,) = draft.add_files(
        [(path, hashed)], overwrite=overwrite, mutable=policy != "immutable", hold=not stored
    )
    return entry


_FOLDER_SLICE = 16384
"""Files of a folder hashed at a time: their local paths and hashes are let go after."""


def add_dir(
    draft: Draft,
    root: str,
    name: str | None,
    *,
    policy: str | None,
    merge: bool,
    collection: str | None = None,
) -> None:
    """Add every file under the folder *root*, named by its path below it (under
    ``name/``): all of them, or none.

    The folder is walked once (``os.scandir``), keeping only the artifact paths; the
    files are hashed a slice at a time, each slice's local paths made from them and its
    results kept as raw digests and sizes: a million files hold no object per file but
    their path. *collection*: the artifact's name, which a server asked what it lacks
    looks up for blobs its latest version may lend."""
    if not os.path.isdir(root):
        raise ValidationError(f"Path is not a directory: {root!r}")
    prefix = f"{name.rstrip('/')}/" if name else ""
    base = folder_base(root)
    with python_gc_paused():
        logical = walk_names(root, prefix)
        _check_listed(logical, prefix)
        raws = bytearray()
        sizes = array("q")
        held: list[tuple[Digest, bytes]] = []
        budget = draft.held_budget()
        cache = get_stat_cache()
        start = len(prefix)
        with (
            progress_bar(f"Hashing {os.path.basename(os.path.abspath(root))}") as bar,
            _capturing(policy, folder=True, collection=collection) as capture,
        ):
            for first in range(0, len(logical), _FOLDER_SLICE):
                physical = _local_paths(base, start, logical[first : first + _FOLDER_SLICE])
                with naming_unreadable(physical):
                    packed = hash_packed(
                        physical,
                        draft.algorithm,
                        cache,
                        progress=bar,
                        keep_bytes=budget,
                        capture=capture,
                    )
                raws += packed.raws
                sizes.extend(packed.sizes)
                if capture is None:
                    for h in packed.fresh:
                        if h.data is not None:
                            held.append((h.digest, h.data))
                            budget -= len(h.data)
        staged = None
        if isinstance(capture, StagingCapture) and capture.staged() == len(logical):
            staged = (capture.entity, capture.project)
        draft.add_folder(
            base,
            prefix,
            logical,
            raws,
            sizes,
            overwrite=merge,
            mutable=policy != "immutable",
            held=held,
            staged=staged,
        )


def _check_listed(paths: list[str], prefix: str) -> None:
    """:func:`validate_artifact_path` of each of *paths*: *prefix* and the names of
    files and folders read from folder listings, joined by ``/``.

    A name read from a listing is never empty, ``.`` or ``..``, and holds no ``/`` and no
    NUL. So once the prefix is checked, what is left to refuse (a backslash, a drive at
    the start, a segment too long) is looked for in the text of a slice of paths at once,
    in C; a slice where any of it may be is checked path by path."""
    if not paths:
        return
    validate_artifact_path(paths[0])  # the prefix, with a first name
    for first in range(0, len(paths), _FOLDER_SLICE):
        part = paths[first : first + _FOLDER_SLICE]
        text = "\x00".join(part)
        longest = max(map(len, part))
        if (
            "\\" in text
            or (not prefix and ":" in text)
            or text.count("\x00") != len(part) - 1
            or (
                longest > SEGMENT_MAX_BYTES // 4
                and not (longest <= SEGMENT_MAX_BYTES and text.isascii())
            )
        ):
            for path in part:
                validate_artifact_path(path)


def _local_paths(base: str, start: int, logical: list[str]) -> list[str]:
    """The local paths of artifact paths *logical* (below *base*, less their first
    *start* characters, the prefix)."""
    if os.sep != "/":
        return [base + p[start:].replace("/", os.sep) for p in logical]
    if not start:
        return list(map(base.__add__, logical))
    return [base + p[start:] for p in logical]


@contextlib.contextmanager
def new_file(
    draft: Draft, name: str, path: str, mode: str, encoding: str | None
) -> Iterator[tuple[IO[Any], str]]:
    """Open a new file of the draft's own for the artifact path *path*; yields it and
    the local path it is at."""
    local = os.path.join(draft.tmp_dir(), *path.split("/"))
    os.makedirs(os.path.dirname(local), exist_ok=True)
    try:
        with open(local, mode, encoding=encoding) as handle:
            yield handle, local
    except FileExistsError:
        raise ValidationError(f"File with name {name!r} already exists at {local!r}") from None
    except UnicodeEncodeError as exc:
        termerror(
            f"Failed to open the provided file ({type(exc).__name__}: {exc}). Please "
            "provide the proper encoding."
        )
        raise


@contextlib.contextmanager
def _capturing(
    policy: str | None, *, folder: bool = False, collection: str | None = None
) -> Iterator[Capture | None]:
    """A capture of the backend a log will most likely go to, for ``policy="mutable"``,
    when it captures while hashing; None otherwise. A server captures a folder's files
    only (*folder*), for the current run's project: one request per ``add_file`` would
    cost more than the log's batches, and without a run the project is not known."""
    if policy == "immutable":
        yield None
        return
    run = current_run()
    try:
        backend = run.log_queue.backend if run is not None else get_backend()
        capture: Capture | None = None
        if isinstance(backend, CapturesWhileHashing):
            capture = backend.begin_capture()
        elif folder and run is not None and isinstance(backend, UploadsWhileHashing):
            capture = backend.begin_upload_capture(
                entity=run.entity, project=run.project, name=collection
            )
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
