"""Server maintenance for its admins: ``gc``, ``verify`` and usage per project, through the
server, so that an operator needs no access to its database or bucket.

Each calls the same service code as ``soko gc`` and ``soko verify`` on the embedded store
(:mod:`soko.service.gc`, :mod:`soko.service.fsck`). Garbage collection is safe while
other server processes write: a blob younger than the grace period is never deleted, and
the sweep takes the lock that commits take (see :mod:`soko.service.gc`). Both run in the
request, which lasts as long as the work: a client waits for the report.
"""

from __future__ import annotations

from fastapi import APIRouter, Request

from soko.server.deps import Caller, State
from soko.server.observe import Metrics
from soko.service import usage
from soko.service.fsck import check_store
from soko.service.gc import collect_garbage
from soko.wire import API_PREFIX
from soko.wire.admin import GcIn, GcOut, ProblemOut, ProjectUsage, UsageList, VerifyIn, VerifyOut

router = APIRouter(prefix=f"{API_PREFIX}/admin", tags=["admin"])


@router.post("/gc")
def gc(body: GcIn, request: Request, state: State, caller: Caller) -> GcOut:
    """Delete the blobs no live version needs (older than the grace period) and the
    versions whose TTL passed; a dry run only reports them."""
    caller.require_admin()
    report = collect_garbage(state.store, grace_seconds=body.grace_seconds, dry_run=body.dry_run)
    if not report.dry_run:
        metrics: Metrics = request.app.state.metrics
        metrics.gc_runs.inc()
        metrics.gc_deleted_blobs.inc(len(report.deleted))
        metrics.gc_freed_bytes.inc(report.freed_bytes)
    return GcOut(
        dry_run=report.dry_run,
        grace_seconds=report.grace_seconds,
        expired=report.expired,
        blobs_listed=report.blobs_listed,
        live_blobs=report.live_blobs,
        deleted=[str(info.digest) for info in report.deleted],
        freed_bytes=report.freed_bytes,
        kept_young=report.kept_young,
        temp_files_removed=report.temp_files_removed,
        packs_deleted=report.packs_deleted,
        packs_rewritten=report.packs_rewritten,
        pack_bytes_reclaimed=report.pack_bytes_reclaimed,
        quarantine_removed=report.quarantine_removed,
    )


@router.post("/verify")
def verify(state: State, caller: Caller, body: VerifyIn | None = None) -> VerifyOut:
    """Re-hash every blob (or a random sample of them) and check every version; damaged
    blobs are set aside. The answer lists each problem with the versions it breaks."""
    caller.require_admin()
    report = check_store(state.store, sample=body.sample if body is not None else None)
    return VerifyOut(
        ok=report.ok,
        problems=[
            ProblemOut(kind=p.kind, subject=p.subject, message=p.message, versions=list(p.versions))
            for p in report.problems
        ],
        notes=report.notes,
        blobs_checked=report.blobs_checked,
        bytes_checked=report.bytes_checked,
        versions_checked=report.versions_checked,
        unreferenced_blobs=report.unreferenced_blobs,
        quarantined=[str(digest) for digest in report.set_aside],
    )


@router.get("/usage")
def project_usage(state: State, caller: Caller) -> UsageList:
    """What each project holds: collections, live versions, files and bytes."""
    caller.require_admin()
    return UsageList(
        projects=[
            ProjectUsage(
                entity=u.entity,
                project=u.project,
                collections=u.collections,
                versions=u.versions,
                files=u.files,
                logical_bytes=u.logical_bytes,
                blob_bytes=u.blob_bytes,
                last_commit_at=u.last_commit_at,
            )
            for u in usage.project_usage(state.store.engine)
        ]
    )
