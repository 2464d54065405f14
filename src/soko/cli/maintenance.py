"""``soko verify`` and ``soko gc``: checking and cleaning the embedded store in SOKO_DIR."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from soko import settings as settings_module
from soko.cli.output import (
    counted,
    format_duration,
    format_size,
    message,
    parse_duration,
    print_json,
)
from soko.errors import NotFoundError

if TYPE_CHECKING:
    from soko.service.fsck import FsckReport, Problem
    from soko.service.repair import RepairReport
    from soko.service.store import Store


def register(commands: Any) -> None:
    verify = commands.add_parser(
        "verify",
        help="check the whole store (re-hash every blob, check every version)",
        description="Re-hash every blob of the store and check every manifest, version, "
        "alias and link row. Prints each problem and exits 1 when there is any. A blob "
        "that fails its digest is moved to the store's quarantine folder; logging the "
        "same files again stores it again.",
    )
    verify.add_argument(
        "--repair",
        action="store_true",
        help="also restore damaged or missing blobs from intact copies in the download "
        "cache (SOKO_CACHE_DIR)",
    )
    verify.add_argument("--json", action="store_true", help="print the report as JSON")
    verify.set_defaults(handler=verify_command)

    gc = commands.add_parser(
        "gc",
        help="delete blobs no live version needs; expire versions past their TTL",
        description="Garbage-collect the store: versions whose TTL has passed are deleted, "
        "then blobs that no live version references and that are older than the grace "
        "period are removed, with temp files of interrupted writes.",
    )
    gc.add_argument(
        "--dry-run", action="store_true", help="report what would be deleted; delete nothing"
    )
    gc.add_argument(
        "--grace",
        default="1h",
        metavar="DURATION",
        help="never delete anything younger than this (default 1h; e.g. 0, 30m, 2d)",
    )
    gc.add_argument("--json", action="store_true", help="print the report as JSON")
    gc.set_defaults(handler=gc_command)


def open_store(command: str) -> tuple[Store, Path]:
    """The embedded store of SOKO_DIR and its folder; refuses to create one where there is
    none. Says on stderr which store *command* works on, and that a configured server is
    not the one."""
    from soko.service.store import Store

    config = settings_module.load()
    root: Path = config.soko_dir
    if not (root / "soko.db").is_file():
        raise NotFoundError(f"No soko store at {root} (set SOKO_DIR to the store's folder).")
    message(f"Store: the embedded store at {root}")
    if config.base_url:
        message(
            f"Note: soko uses the server {config.base_url} for artifacts; `soko {command}` "
            "works on the embedded store in SOKO_DIR, not on the server."
        )
    return Store.open_local(root), root


def verify_command(args: argparse.Namespace) -> int:
    from soko.sdk.progress import progress_bar
    from soko.service.fsck import check_store
    from soko.service.repair import REPAIRABLE

    store, root = open_store("verify")
    with progress_bar("Verifying", unit="blob") as bar:
        report = check_store(store, progress=bar)
    repair = _repair(store, report) if args.repair else None
    if args.json:
        print_json({"store": str(root), **_verify_json(report, repair)})
    else:
        _print_verify(report, repair)
    if repair is not None:
        others = [p for p in report.problems if p.kind not in REPAIRABLE or p.digest is None]
        return 0 if not repair.unrepaired and not others else 1
    return 0 if report.ok else 1


def _repair(store: Store, report: FsckReport) -> RepairReport:
    from soko.client.cache import BlobCache
    from soko.service.repair import repair_store

    cache = BlobCache.from_settings(settings_module.load())
    return repair_store(store, report, sources=[cache.open_copy])


def _verify_json(report: FsckReport, repair: RepairReport | None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "ok": report.ok,
        "problems": [
            {
                "kind": p.kind,
                "subject": p.subject,
                "message": p.message,
                "versions": list(p.versions),
            }
            for p in report.problems
        ],
        "notes": report.notes,
        "blobs_checked": report.blobs_checked,
        "bytes_checked": report.bytes_checked,
        "versions_checked": report.versions_checked,
        "unreferenced_blobs": report.unreferenced_blobs,
        "quarantined": [str(digest) for digest in report.set_aside],
    }
    if repair is not None:
        data["repair"] = {
            "restored": [p.subject for p in repair.restored],
            "unrepaired": [p.subject for p in repair.unrepaired],
            "broken_versions": repair.broken_versions,
        }
    return data


def _print_verify(report: FsckReport, repair: RepairReport | None) -> None:
    from soko.service.repair import REPAIRABLE

    for problem in report.problems:
        print(f"ERROR {problem.message}")
    for note in report.notes:
        print(f"note  {note}")
    if repair is not None:
        for problem in repair.restored:
            print(f"Restored {problem.subject} from the download cache ({_versions(problem)})")
        for name in repair.broken_versions:
            print(f"Still broken: {name} (no intact copy of a blob it needs)")
    summary = (
        f"Checked {counted(report.blobs_checked, 'blob')} "
        f"({format_size(report.bytes_checked)}) and "
        f"{counted(report.versions_checked, 'version')}: "
    )
    if report.ok:
        print(summary + "no problems.")
        return
    repaired = f", {len(repair.restored)} repaired" if repair is not None else ""
    print(summary + f"{counted(len(report.problems), 'problem')}{repaired}.")
    blobs_lacking = any(p.kind in REPAIRABLE for p in report.problems)
    if repair is None and blobs_lacking:
        message(
            "To repair: log the same files again (the store takes back the blobs it lacks), "
            "or run `soko verify --repair` to restore them from the download cache."
        )
    elif repair is not None and repair.unrepaired:
        message("To repair what is still broken: log the same files again.")


def _versions(problem: Problem) -> str:
    return ", ".join(problem.versions) or "no live version needs it"


def gc_command(args: argparse.Namespace) -> int:
    from soko.sdk.progress import progress_bar
    from soko.service.gc import collect_garbage

    grace = parse_duration(args.grace)
    store, root = open_store("gc")
    # Marking reads the manifest of every live version: the long part on a large store.
    with progress_bar("Reading manifests", unit="version") as bar:
        report = collect_garbage(store, grace_seconds=grace, dry_run=args.dry_run, progress=bar)
    if args.json:
        print_json(
            {
                "store": str(root),
                "dry_run": report.dry_run,
                "grace_seconds": report.grace_seconds,
                "expired": report.expired,
                "blobs_listed": report.blobs_listed,
                "live_blobs": report.live_blobs,
                "deleted": [str(info.digest) for info in report.deleted],
                "freed_bytes": report.freed_bytes,
                "kept_young": report.kept_young,
                "temp_files_removed": report.temp_files_removed,
                "packs_deleted": report.packs_deleted,
                "packs_rewritten": report.packs_rewritten,
                "pack_bytes_reclaimed": report.pack_bytes_reclaimed,
                "quarantine_removed": report.quarantine_removed,
            }
        )
        return 0
    for name in report.expired:
        print(f"{'Would expire' if report.dry_run else 'Expired'} {name} (its TTL passed)")
    verb = "Would delete" if report.dry_run else "Deleted"
    print(
        f"{verb} {len(report.deleted)} of {report.blobs_listed} blobs "
        f"({format_size(report.freed_bytes)}); {report.live_blobs} are in use."
    )
    if report.kept_young:
        message(
            f"Kept {report.kept_young} unreferenced blobs younger than the grace period "
            f"({format_duration(report.grace_seconds)})."
        )
    if report.temp_files_removed:
        temp_verb = "Would remove" if report.dry_run else "Removed"
        print(f"{temp_verb} {report.temp_files_removed} temp files of interrupted writes.")
    if report.quarantine_removed:
        quarantine_verb = "Would remove" if report.dry_run else "Removed"
        print(
            f"{quarantine_verb} {report.quarantine_removed} damaged blobs from the quarantine "
            "(stored again, or needed by no live version)."
        )
    if report.packs_deleted or report.packs_rewritten:
        pack_verb = "Would reclaim" if report.dry_run else "Reclaimed"
        print(
            f"{pack_verb} {format_size(report.pack_bytes_reclaimed)} of packs "
            f"({report.packs_deleted} deleted, {report.packs_rewritten} rewritten)."
        )
    return 0
