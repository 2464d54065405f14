"""A run's background log: a draft's request, stored and committed in order.

:meth:`LogQueue.submit` runs the first half of a log on the caller's thread, before
``log_artifact`` returns: one question for the blobs the backend lacks, and the bytes of the
``policy="mutable"`` files among them stored (:func:`~soko.sdk.transfer.stage_mutable`).
The rest goes to the run's one background thread, in the order the logs were asked for:
every blob still missing stored from its source, then the request sent to the backend as
it is (commit, upsert or finish). A commit that finds a blob swept by garbage collection in
between (MissingBlobsError) stores what is missing and sends again, once.

It knows no artifact: the artifact builds the request and takes the record back through
the callback it hands in.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

from soko.client.backend import Backend, CapturesWhileHashing
from soko.client.pygc import python_gc_paused
from soko.core.records import VersionRecord
from soko.core.requests import CommitRequest
from soko.errors import MissingBlobsError
from soko.sdk import transfer
from soko.sdk.draft import Draft
from soko.sdk.missing import MissingDigests
from soko.sdk.progress import progress_bar, step_bar


class LogKind(enum.Enum):
    """What a log makes of its request; the value is the verb W&B's method names."""

    COMMIT = "log"
    UPSERT = "upsert"
    FINISH = "finish"


class LogQueue:
    """The logs of one run, sent by one background thread in the order they were asked."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="soko-log")
        self._futures: list[Future[VersionRecord]] = []

    def submit(
        self,
        request: CommitRequest,
        draft: Draft,
        *,
        kind: LogKind,
        on_logged: Callable[[VersionRecord], None],
    ) -> Future[VersionRecord]:
        """Stage the draft's mutable files now, then store and send *request* in the
        background; *on_logged* gets the record before the future completes.

        Call it outside :func:`~soko.client.pygc.python_gc_paused`: the background thread
        pauses the collector for its commit only if it finds it running, and a pause of the
        caller's would end while the commit runs.
        """
        backend = self.backend
        target = {"entity": request.entity, "project": request.project, "name": request.name}
        manifest = request.manifest
        with python_gc_paused():
            if backend.has_committed_digest(
                request.entity,
                request.project,
                request.name,
                manifest.digest(),
                blobs=manifest.stored_blobs(),
            ):
                # Content already committed in this collection: its blobs are stored, and
                # the commit only adds aliases and lineage to that version.
                missing = MissingDigests()
            else:
                # The embedded store copies the files into itself; a server's client
                # uploads them now (see BlobTransfer.store_blobs's staging).
                word = "Copying" if isinstance(backend, CapturesWhileHashing) else "Uploading"
                with progress_bar(f"{word} {request.name}") as bar:
                    missing = transfer.stage_mutable(
                        backend, draft, manifest, **target, progress=bar
                    )
        send = {
            LogKind.COMMIT: backend.commit,
            LogKind.UPSERT: backend.upsert,
            LogKind.FINISH: backend.finish_distributed,
        }[kind]

        def store_and_send(known_missing: MissingDigests | None) -> VersionRecord:
            with progress_bar(f"Uploading {request.name}") as bar:
                transfer.store_missing(
                    backend, draft, manifest, **target, missing=known_missing, progress=bar
                )
            # A commit of many files takes seconds (the manifest written or sent, every
            # blob checked, the rows written): one step, shown as such.
            with step_bar(f"Committing {request.name}", items=len(manifest)):
                return send(request)

        def job() -> VersionRecord:
            try:
                with python_gc_paused():
                    record = store_and_send(missing)
            except MissingBlobsError:
                # Garbage collection swept an unreferenced blob this log counted on between
                # the upload and the commit: store what is missing now and send again.
                record = store_and_send(None)
            on_logged(record)
            return record

        future = self._executor.submit(job)
        self._futures.append(future)
        return future

    def wait(self) -> list[BaseException]:
        """Wait for every log; the errors of those that failed, in order."""
        errors: list[BaseException] = []
        for future in list(self._futures):
            exc = future.exception()
            if exc is not None:
                errors.append(exc)
        return errors

    def close(self) -> None:
        self._executor.shutdown(wait=True)
