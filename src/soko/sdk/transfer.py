"""Moving an artifact's bytes: upload before a commit, download into a root, verify a root.

Downloads keep what is already right: a file in the root whose stat the stat cache knows,
or whose content hashes to the entry's digest, is neither fetched nor rewritten. Every
path is validated again here, so no manifest can make soko write outside the root; nor
can a symbolic link to a folder inside the root: a download, checkout or verify whose
files lie below one refuses before it writes, deletes or reads anything
(:func:`refuse_linked_folders`). A link where a file goes is replaced, never written
through: every write into a root creates a new file (``O_EXCL``) or renames one over it.
"""

from __future__ import annotations

import functools
import itertools
import os
import stat as stat_module
from collections import deque
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from soko.client.backend import BlobTransfer, Progress
from soko.client.hashing import FileStat, hash_files_cached
from soko.client.materialize import lock_temp, remove_stale_temps, temp_beside
from soko.client.pygc import collect_young
from soko.client.sources import BlobSource
from soko.client.statcache import StatCache
from soko.core.digests import Digest
from soko.core.entries import EntryValues
from soko.core.manifest import Entry, Manifest
from soko.core.names import validate_artifact_path
from soko.errors import (
    DigestMismatchError,
    MissingReferenceError,
    NotFoundError,
    SokoError,
    ValidationError,
)
from soko.refs.base import handler_for
from soko.sdk.draft import Draft
from soko.sdk.missing import MissingDigests, ask_missing
from soko.sdk.progress import Startable, announce
from soko.terminal import termwarn

_UPLOAD_SLICE = 4096
"""Sources made and stored at a time: a million files never hold a source each."""
_SLICES_AT_ONCE = 2
_Slice = TypeVar("_Slice")
_Item = TypeVar("_Item")
_Done = TypeVar("_Done")


def _two_at_a_time(slices: Iterator[_Slice], work: Callable[[_Slice], _Done]) -> Iterator[_Done]:
    """``work(slice)`` for each of *slices*, two at once, the results in order.

    A slice's uploads end with a few requests in flight, and the next slice's begin with
    the client reading files while the server waits: two slices at once keep both sides
    busy. A slice's download begins with work on one thread (its destinations, what the
    cache holds, which version serves each blob) and ends with another (the stat cache's
    records), while the other slice's files are being written; each slice then gets one
    writer thread, not two, since more threads than cores creating files only contend.
    A failure cancels the slice not begun and is raised once the running one ends."""
    with ThreadPoolExecutor(max_workers=_SLICES_AT_ONCE, thread_name_prefix="soko-slice") as pool:
        running: deque[Future[_Done]] = deque()
        try:
            for part in slices:
                running.append(pool.submit(work, part))
                del part
                if len(running) == _SLICES_AT_ONCE:
                    yield running.popleft().result()
            while running:
                yield running.popleft().result()
        finally:
            for future in running:
                future.cancel()


def _cut(items: Iterator[_Item], size: int) -> Iterator[list[_Item]]:
    while part := list(itertools.islice(items, size)):
        yield part


def _store_sliced(
    backend: BlobTransfer,
    sources: Iterator[BlobSource],
    *,
    entity: str,
    project: str,
    progress: Progress | None,
    staging: bool,
) -> list[BlobSource]:
    """Store *sources* a slice at a time, two slices at once; the staged copies
    ``store_blobs`` returned. The slices are cut on this thread only: taking a source
    from the draft updates what is left to store."""
    store = functools.partial(
        backend.store_blobs, entity=entity, project=project, progress=progress, staging=staging
    )
    copies: list[BlobSource] = []
    for staged in _two_at_a_time(_cut(sources, _UPLOAD_SLICE), store):
        copies += staged
        collect_young()  # the requests of the slice, with their bodies (see pygc)
    return copies


def stage_mutable(
    backend: BlobTransfer,
    draft: Draft,
    manifest: Manifest,
    *,
    entity: str,
    project: str,
    name: str,
    progress: Progress | None = None,
) -> MissingDigests:
    """Store, before ``log_artifact`` returns, the bytes of files added with
    ``policy="mutable"`` that the backend does not hold yet; returns the digests the backend
    still lacks (one batched question for the whole manifest, minus what was stored).

    So the caller may overwrite its files as soon as the log call returns (the checkpoint
    loop). Each file is verified against the digest taken when it was added: a file changed
    in between fails here, loudly. Files added with ``policy="immutable"`` are read later,
    by the background upload, and so are the small files whose bytes the draft kept when it
    hashed them: those bytes are a snapshot already. The blobs are stored for
    ``entity/project``, which logs them into its collection *name*.
    """
    if draft.staged_on(entity, project):
        # The server confirmed every blob stored for the project while add_dir read the
        # files: asking about each again would cost it as much as storing them. Should one
        # be gone by the commit (swept), the commit fails and the log asks then.
        return MissingDigests()
    missing = ask_missing(
        backend, manifest.stored_blobs(), entity=entity, project=project, name=name
    )
    if not missing:
        return missing
    bar = _bar(progress)
    if bar is not None:
        # The bar's totals walk the draft once more: only when a bar shows them.
        count, nbytes = draft.source_totals(missing, to_stage=True)
        if not count:
            return missing
        bar.start(count, nbytes)
    # Each staged digest leaves *missing* as its source is made.
    sources = draft.take_sources(missing, to_stage=True)
    copies = _store_sliced(
        backend, sources, entity=entity, project=project, progress=progress, staging=True
    )
    draft.keep_copies(copies)
    # A blob staged in a local copy (a key that may not upload) is still to be stored.
    for source in copies:
        missing.add(source.digest)
    # What is left (the blobs whose bytes the draft kept, say) is a small part of what
    # was asked: the slots of those staged are given back before the upload.
    missing.compact()
    return missing


def store_missing(
    backend: BlobTransfer,
    draft: Draft,
    manifest: Manifest,
    *,
    entity: str,
    project: str,
    name: str,
    missing: MissingDigests | None = None,
    progress: Progress | None = None,
) -> None:
    """Store every blob the manifest needs that the backend lacks for ``entity/project``
    (collection *name*), from the draft's sources.

    *missing*, when given, is the backend's answer to that question asked just before;
    otherwise the backend is asked. Each digest is taken out of *missing* as its blob is
    stored. The bytes the draft kept from hashing are dropped afterwards either way: a
    retry reads the files.
    """
    try:
        if missing is None:
            missing = ask_missing(
                backend, manifest.stored_blobs(), entity=entity, project=project, name=name
            )
        if not missing:
            return
        bar = _bar(progress)
        if bar is not None:
            # The bar's totals walk the draft once more: only when a bar shows them, and
            # then a blob nothing can store fails the log before any upload.
            count, nbytes = draft.source_totals(missing)
            if count < len(missing):
                unavailable = missing.copy()
                for _ in draft.take_sources(unavailable):
                    pass
                raise _unavailable(unavailable)
            bar.start(count, nbytes)
        # Not a copy: each digest leaves as its source is made (a million of them).
        sources = draft.take_sources(missing)
        _store_sliced(
            backend, sources, entity=entity, project=project, progress=progress, staging=False
        )
        if missing:  # what the draft has no source for
            raise _unavailable(missing)
    finally:
        draft.release_held()


def _bar(progress: Progress | None) -> Startable | None:
    """*progress* when it takes totals (a bar shown), else None."""
    shown: object = progress
    return shown if isinstance(shown, Startable) else None


def _unavailable(digests: Collection[Digest]) -> DigestMismatchError:
    return DigestMismatchError(
        f"{len(digests)} entries of the draft have neither a local file nor a "
        f"stored blob (e.g. {next(iter(digests))})."
    )


def destination(root: str, path: str) -> str:
    """The file of entry *path* under *root*; refuses any path that would leave the root."""
    safe = validate_artifact_path(path)
    # A validated path has no empty, "." or ".." segment: joining by hand is the same as
    # os.path.join of its segments, at a fraction of the cost for 20,000 entries.
    if os.sep != "/":
        safe = safe.replace("/", os.sep)
    if not root:
        return safe
    return f"{root.rstrip(os.sep)}{os.sep}{safe}"


def select_entries(manifest: Manifest, path_prefix: str | None) -> Collection[Entry]:
    if not path_prefix:
        # A view: the entries are made a slice at a time as the download reads them.
        return manifest.entries.values()
    return [e for e in manifest if e.path.startswith(path_prefix)]


def refuse_linked_folders(root: str, paths: Iterable[str], *, doing: str) -> None:
    """Raise ValidationError when a folder of *root* that files *paths* (artifact paths)
    lie in is a symbolic link, or is not a folder.

    Writing through such a link would put files outside the root, and checkout would
    delete there. *root* itself may be a link: the user chose it. One ``lstat`` per folder
    below the root, however many files it holds, and none below a folder that does not
    exist. The check runs before the download: a link made while it runs is not caught.
    """
    base = root or "."
    exists: dict[str, bool] = {}
    for folder in {path.rpartition("/")[0] for path in paths}:
        if not folder:
            continue
        prefix = ""
        for name in folder.split("/"):
            prefix = f"{prefix}/{name}" if prefix else name
            known = exists.get(prefix)
            if known is None:
                known = exists[prefix] = _real_folder(base, prefix, doing)
            if not known:
                break  # and nothing below it exists either


def _real_folder(base: str, relative: str, doing: str) -> bool:
    """Whether *relative* exists below *base* as a real folder; raises if it is a link or
    anything else."""
    full = os.path.join(base, *relative.split("/"))
    try:
        found = os.lstat(full)
    except (FileNotFoundError, NotADirectoryError):  # the root itself may be a file
        return False
    if stat_module.S_ISDIR(found.st_mode):
        return True
    if stat_module.S_ISLNK(found.st_mode):
        raise ValidationError(
            f"Cannot {doing} {base!r}: {full!r} is a symbolic link (to "
            f"{os.readlink(full)!r}), and soko never writes, deletes or reads files through "
            "a link inside a download root. Nothing was changed; remove the link or use "
            "another root."
        )
    raise ValidationError(
        f"Cannot {doing} {base!r}: {full!r} is not a folder, but the artifact has files in a "
        "folder of that name. Nothing was changed."
    )


def _unchanged(entries: Sequence[tuple[Entry, str]], cache: StatCache | None) -> set[str]:
    """Destinations that already hold their entry's bytes (checked by stat cache or hash)."""
    candidates: list[tuple[Entry, str]] = []
    for entry, dest in entries:
        try:
            st = os.stat(dest)
        except (FileNotFoundError, NotADirectoryError):
            continue
        if stat_module.S_ISREG(st.st_mode) and (entry.size is None or st.st_size == entry.size):
            candidates.append((entry, dest))
    if not candidates:
        return set()
    kept: set[str] = set()
    by_algorithm: dict[object, list[tuple[Entry, str]]] = {}
    for entry, dest in candidates:
        by_algorithm.setdefault(entry.algorithm, []).append((entry, dest))
    for algorithm, group in by_algorithm.items():
        hashed = hash_files_cached([d for _, d in group], group[0][0].algorithm, cache)
        for (entry, dest), result in zip(group, hashed, strict=True):
            if result.digest.b64 == entry.digest:
                kept.add(dest)
        del algorithm
    return kept


_DOWNLOAD_SLICE = 16384
"""Entries fetched at a time: their destinations, digests and stats are let go after."""


def download_entries(
    backend: BlobTransfer,
    entries: Collection[Entry],
    root: str,
    *,
    cache: StatCache | None,
    allow_missing_references: bool = False,
    progress: Progress | None = None,
    use_cache: bool = True,
) -> None:
    """Download *entries* into *root*, a slice at a time (so that a million entries hold
    one slice's destinations at once); references last."""
    # A root that does not exist or is empty holds no link and no file yet: a first
    # download need not look at 20,000 paths that cannot be there. Otherwise every
    # folder is checked before anything is written.
    fresh = _empty_folder(root or ".")
    if not fresh:
        # A manifest's view names its paths without making each entry twice.
        paths = entries.paths() if isinstance(entries, EntryValues) else (e.path for e in entries)
        refuse_linked_folders(root, paths, doing="download into")
    references: list[tuple[Entry, str]] = []

    def slices() -> Iterator[list[tuple[Entry, str]]]:
        """The stored entries with their destinations, a slice at a time; the references
        are set aside for the end."""
        pending = iter(entries)
        while chunk := list(itertools.islice(pending, _DOWNLOAD_SLICE)):
            stored: list[tuple[Entry, str]] = []
            for entry in chunk:
                dest = destination(root, entry.path)
                (references if entry.ref is not None else stored).append((entry, dest))
            del chunk
            yield stored

    def fetch(stored: list[tuple[Entry, str]], *, writers: int | None = None) -> None:
        _download_stored(
            backend,
            stored,
            fresh=fresh,
            cache=cache,
            progress=progress,
            use_cache=use_cache,
            writers=writers,
        )

    # More than two slices: two at once, each written by one thread (see _two_at_a_time).
    # Two slices are fetched one after the other with the backend's writers: the second
    # is usually the shorter, and beside it the first's one writer would be left alone.
    cut = slices()
    head = list(itertools.islice(cut, 3))
    if len(head) < 3:
        for stored in head:
            fetch(stored)
            collect_young()  # the answers of the slice, with their bodies (see pygc)
    else:
        several = itertools.chain(head, cut)
        del head
        for _ in _two_at_a_time(several, functools.partial(fetch, writers=1)):
            collect_young()
    if references:
        remove_stale_temps(dest for _, dest in references)
    for entry, dest in references:
        _download_reference(entry, dest, allow_missing=allow_missing_references)


def _download_stored(
    backend: BlobTransfer,
    stored: list[tuple[Entry, str]],
    *,
    fresh: bool,
    cache: StatCache | None,
    progress: Progress | None,
    use_cache: bool,
    writers: int | None,
) -> None:
    keep = set() if fresh else _unchanged(stored, cache)
    todo = [(e.blob_digest(), d) for e, d in stored if d not in keep]
    announce(progress, len(todo), sum(e.size or 0 for e, d in stored if d not in keep))
    if not fresh:  # a root that was empty holds no temp of a killed download
        remove_stale_temps([dest for _, dest in todo])
    backend.fetch_blobs(todo, progress=progress, use_cache=use_cache, writers=writers)
    if cache is not None and todo:
        cache.record(((FileStat.of(os.stat(dest)), digest) for digest, dest in todo), trusted=True)


def _empty_folder(path: str) -> bool:
    """True when *path* does not exist or is a folder with nothing in it."""
    try:
        with os.scandir(path) as listing:
            return next(listing, None) is None
    except FileNotFoundError:
        return True
    except OSError:
        return False  # not a folder, or unreadable: let the per-file checks decide


def _download_reference(entry: Entry, dest: str, *, allow_missing: bool) -> None:
    os.makedirs(os.path.dirname(dest) or ".", exist_ok=True)
    tmp = temp_beside(dest)
    try:
        with open(tmp, "wb") as out:
            lock_temp(out.fileno())  # see remove_stale_temps
            handler_for(entry.ref or "").fetch(entry, out)
        os.replace(tmp, dest)
    except (SokoError, OSError) as exc:
        if os.path.exists(tmp):
            os.unlink(tmp)
        # Gone from its source: W&B's handlers raise FileNotFoundError, which
        # allow_missing_references turns into a warning.
        missing = exc
        if isinstance(exc, NotFoundError) and not isinstance(exc, MissingReferenceError):
            missing = MissingReferenceError(f"Unable to find {entry.path} at {entry.ref}: {exc}")
        if not allow_missing:
            if missing is exc:
                raise
            raise missing from exc
        termwarn(str(missing))


def files_under(root: str) -> set[str]:
    """Every file below *root*, as artifact-style relative POSIX paths.

    A symbolic link is listed as a file whatever it points to: only real folders are
    walked, so nothing outside the root is listed (nor deleted by a checkout).
    """
    found: set[str] = set()
    pending = [(root, "")]
    while pending:
        folder, relative = pending.pop()
        with os.scandir(folder) as listing:
            for item in listing:
                if item.is_dir(follow_symlinks=False):
                    pending.append((item.path, f"{relative}{item.name}/"))
                else:
                    found.add(f"{relative}{item.name}")
    return found


def verify_root(manifest: Manifest, root: str, *, cache: StatCache | None) -> None:
    """Raise ValueError when a file in *root* differs from the manifest or is extra, or
    when a folder of the artifact is a link in *root* (see :func:`refuse_linked_folders`)."""
    if not os.path.isdir(root):
        raise ValueError(f"Cannot verify {root!r}: it is not a directory.")
    refuse_linked_folders(root, (e.path for e in manifest), doing="verify")
    present = files_under(root)
    expected = {e.path for e in manifest}
    extra = sorted(present - expected)
    if extra:
        raise ValueError(f"Found files in {root} not in the artifact: {', '.join(extra[:5])}")
    stored = [e for e in manifest if e.ref is None]
    missing = sorted(e.path for e in stored if e.path not in present)
    if missing:
        raise ValueError(f"Files missing from {root}: {', '.join(missing[:5])}")
    pairs = [(e, destination(root, e.path)) for e in stored]
    good = _unchanged(pairs, cache)
    bad = sorted(e.path for e, d in pairs if d not in good)
    if bad:
        raise ValueError(f"Files in {root} differ from the artifact: {', '.join(bad[:5])}")


def remove_extra(manifest: Manifest, root: str) -> None:
    """Delete files under *root* that the manifest does not name, then empty folders.

    A link the manifest does not name is removed as a link, its target left alone; a
    folder of the artifact that is a link refuses the checkout before anything is deleted.
    """
    refuse_linked_folders(root, (e.path for e in manifest), doing="check out")
    expected = {e.path for e in manifest}
    for relative in files_under(root) - expected:
        os.unlink(os.path.join(root, *relative.split("/")))
    for dirpath, _dirs, _files in sorted(os.walk(root), key=lambda t: -len(t[0])):
        if dirpath != root and not os.listdir(dirpath):
            os.rmdir(dirpath)


def default_root(name: str, version: str) -> str:
    return str(Path(".") / "artifacts" / f"{name}:{version}")
