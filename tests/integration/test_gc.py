"""Garbage collection (soko.service.gc): exactly the unreferenced blobs go, never a young one,
never one a live version needs, also while another process logs."""

from __future__ import annotations

import datetime
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import soko
from soko.core.digests import Algorithm, Digest
from soko.core.manifest import Entry, Manifest, ManifestRef
from soko.core.records import COMMITTED
from soko.core.requests import CommitRequest
from soko.errors import NotFoundError, StoreError
from soko.service import versions
from soko.service.commit import commit_version
from soko.service.fsck import check_store
from soko.service.gc import collect_garbage, live_versions
from soko.service.store import Store

pytestmark = pytest.mark.integration

HOUR = 3600.0


def _log(name: str, files: dict[str, str], tmp_path: Path, **attributes: object) -> soko.Artifact:
    folder = tmp_path / f"src-{name}-{time.monotonic_ns()}"
    for relative, text in files.items():
        (folder / relative).parent.mkdir(parents=True, exist_ok=True)
        (folder / relative).write_text(text)
    with soko.init(project="proj") as run:
        artifact = soko.Artifact(name, "dataset")
        for key, value in attributes.items():
            setattr(artifact, key, value)
        artifact.add_dir(str(folder))
        run.log_artifact(artifact).wait()
    return artifact


def _digest(text: str) -> Digest:
    return Digest.of_bytes(text.encode(), Algorithm.XXH128)


def _manifest_digest(artifact: soko.Artifact) -> Digest:
    assert artifact._record is not None and artifact._record.manifest_blob is not None
    return ManifestRef.parse(artifact._record.manifest_blob).digest


def _blobs(store: Store) -> set[Digest]:
    return {info.digest for info in store.blobs.list()}


def _age(store: Store, seconds: float, only: set[Digest] | None = None) -> None:
    past = time.time() - seconds
    for info in store.blobs.list():
        if only is None or info.digest in only:
            path = store.blobs.local_path(info.digest)
            assert path is not None
            os.utime(path, (past, past))


@pytest.fixture
def store(soko_env) -> Store:
    return Store.open_local(soko_env.store)


def test_frees_exactly_the_blobs_no_other_version_uses(store: Store, tmp_path: Path):
    v0 = _log("ds", {"a.txt": "shared", "b.txt": "only-v0", "c.txt": "c0"}, tmp_path)
    _log("ds", {"a.txt": "shared", "b.txt": "only-v1", "d.txt": "d1"}, tmp_path)
    other = _log("other", {"x.txt": "only-v0"}, tmp_path)  # the content of ds:v0's b.txt
    everything = _blobs(store)
    assert len(everything) == 5 + 3  # five distinct contents, three manifests

    v0.delete()
    _age(store, 2 * HOUR)
    report = collect_garbage(store)
    # "shared" is in ds:v1 and "only-v0" in other:v0: only c0 and v0's manifest are free.
    expected = {_digest("c0"), _manifest_digest(v0)}
    assert {info.digest for info in report.deleted} == expected
    assert report.freed_bytes == sum(
        info.size for info in report.deleted
    ) and report.freed_bytes > len("c0")
    assert _blobs(store) == everything - expected
    assert report.live_blobs == len(everything) - 2

    other.delete()
    report = collect_garbage(store)
    assert {info.digest for info in report.deleted} == {
        _digest("only-v0"),
        _manifest_digest(other),
    }
    assert len(_blobs(store)) == len(everything) - 4
    assert check_store(store).ok
    v1 = soko.Api().artifact("proj/ds:latest")
    v1.verify(v1.download(root=str(tmp_path / "v1")))


def test_dry_run_deletes_nothing(store: Store, tmp_path: Path):
    gone = _log("ds", {"a.txt": "a", "b.txt": "b"}, tmp_path)
    _log("keep", {"a.txt": "a"}, tmp_path)
    expiring = _log("ttl", {"t.txt": "t"}, tmp_path, ttl=datetime.timedelta(hours=1))
    gone.delete()
    _age(store, 2 * HOUR)
    before = {info.digest: info.modified for info in store.blobs.list()}
    temp = Path(store.blobs.root) / "tmp" / "1-1-stale.tmp"  # type: ignore[attr-defined]
    temp.write_bytes(b"x")
    os.utime(temp, (time.time() - 2 * HOUR,) * 2)
    later = datetime.datetime.now(datetime.UTC) + datetime.timedelta(hours=2)

    dry = collect_garbage(store, dry_run=True, now=later)
    assert dry.expired == ["local/proj/ttl:v0"]
    would = {info.digest for info in dry.deleted}
    assert would == {
        _digest("b"),
        _manifest_digest(gone),
        _digest("t"),
        _manifest_digest(expiring),
    }
    assert dry.temp_files_removed == 1
    assert {info.digest: info.modified for info in store.blobs.list()} == before
    assert temp.exists()
    assert soko.Api().artifact("proj/ttl:v0").state == COMMITTED

    real = collect_garbage(store, now=later)
    assert real.expired == dry.expired
    assert {info.digest for info in real.deleted} == would
    assert real.temp_files_removed == 1 and not temp.exists()


def test_never_a_blob_younger_than_the_grace_period(store: Store, tmp_path: Path):
    gone = _log("ds", {"a.txt": "young", "b.txt": "old"}, tmp_path)
    gone.delete()
    report = collect_garbage(store)  # default grace: one hour
    assert report.deleted == [] and report.kept_young == 3
    _age(store, 2 * HOUR, only={_digest("old")})
    report = collect_garbage(store)
    assert [info.digest for info in report.deleted] == [_digest("old")]
    assert report.kept_young == 2
    report = collect_garbage(store, grace_seconds=0)
    assert {info.digest for info in report.deleted} == {_digest("young"), _manifest_digest(gone)}
    assert _blobs(store) == set()


def test_ttl_expiry_deletes_the_version_and_frees_its_blobs(store: Store, tmp_path: Path):
    _log("ds", {"a.txt": "kept"}, tmp_path)
    short = _log("ds", {"a.txt": "short-lived"}, tmp_path, aliases=["best"])
    short.ttl = datetime.timedelta(days=1)
    short.save()
    assert collect_garbage(store, grace_seconds=0).expired == []  # not yet

    later = datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=2)
    report = collect_garbage(store, grace_seconds=0, now=later)
    assert report.expired == ["local/proj/ds:v1"]
    assert {info.digest for info in report.deleted} == {
        _digest("short-lived"),
        _manifest_digest(short),
    }
    with pytest.raises(NotFoundError):
        soko.Api().artifact("proj/ds:best")
    latest = soko.Api().artifact("proj/ds:latest")
    assert latest.version == "v0"
    assert check_store(store).ok


def test_pending_distributed_entries_are_live(store: Store, tmp_path: Path):
    part = tmp_path / "part.txt"
    part.write_text("pending part")
    with soko.init(project="proj", group="g") as run:
        artifact = soko.Artifact("dist", "dataset")
        artifact.add_file(str(part))
        run.upsert_artifact(artifact).wait()
    _age(store, 2 * HOUR)
    report = collect_garbage(store, grace_seconds=0)
    assert report.deleted == []
    assert _digest("pending part") in _blobs(store)


def test_stops_when_a_live_manifest_cannot_be_read(store: Store, tmp_path: Path):
    broken = _log("ds", {"a.txt": "a"}, tmp_path)
    gone = _log("junk", {"j.txt": "junk"}, tmp_path)
    gone.delete()
    _age(store, 2 * HOUR)
    store.blobs.delete(_manifest_digest(broken))
    before = _blobs(store)
    with pytest.raises(StoreError, match="local/proj/ds:v0"):
        collect_garbage(store, grace_seconds=0)
    assert _blobs(store) == before  # nothing deleted: what ds:v0 needs is unknown


def test_a_blob_being_checked_in_the_quarantine_is_not_collected(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    # Setting a blob aside moves it to the quarantine first and checks it there; an intact
    # one goes back. A gc running in between must not take it for a damaged blob to drop.
    from soko.storage import quarantine as quarantine_module

    data = b"young and intact, being checked"
    digest = Digest.of_bytes(data, Algorithm.XXH128)
    store.blobs.put_bytes(digest, data)  # young and unreferenced: a writer's, in flight
    path = store.blobs.local_path(digest)
    assert path is not None
    os.chmod(path, 0o644)
    a_day_ago = time.time() - 24 * HOUR
    os.utime(path, (a_day_ago, a_day_ago))  # a rename keeps this time: it proves nothing
    reports = []
    original = quarantine_module._file_matches

    def collect_then_check(kept: str, wanted: Digest) -> bool:
        reports.append(collect_garbage(store, grace_seconds=HOUR))
        return original(kept, wanted)

    monkeypatch.setattr(quarantine_module, "_file_matches", collect_then_check)
    assert store.set_aside(digest) is False
    assert [report.quarantine_removed for report in reports] == [0]
    assert store.blobs.read_bytes(digest) == data


def test_a_commit_racing_gc_fails_cleanly(store: Store, tmp_path: Path, monkeypatch):
    """GC removes an old unreferenced blob after a commit checked it but before the commit
    transaction: the commit must fail, not name a deleted blob."""
    data = b"reused content"
    digest = Digest.of_bytes(data, Algorithm.XXH128)
    store.blobs.put_bytes(digest, data)
    _age(store, 2 * HOUR)
    entry = Entry("f.bin", digest.b64, len(data), extra={"alg": "XXH128"})
    manifest = Manifest.of([entry], Algorithm.XXH128)
    original = store.put_manifest

    def put_manifest_then_gc(manifest: Manifest) -> str:
        key = original(manifest)
        collect_garbage(store, grace_seconds=60)  # the old data blob goes, the manifest stays
        return key

    monkeypatch.setattr(store, "put_manifest", put_manifest_then_gc)
    request = CommitRequest(
        entity="local", project="proj", name="race", type="dataset", manifest=manifest
    )
    with pytest.raises(NotFoundError, match="not stored"):
        commit_version(store, request)
    with store.engine.connect() as conn:
        assert live_versions(conn) == []
    assert check_store(store).ok


# ----- two processes: one logs while the other collects ---------------------------------

# The logger tells the collector (a line on the "steps" pipe) each time it has made a step's
# garbage, and before telling it the next one waits for its answer (a line on "acks"): a
# collection runs while the logger logs the step after the one it was told of, and every
# step's garbage is collected while the logger is still logging.
_LOGGER = textwrap.dedent(
    """
    import os, sys, time, pathlib, soko
    from soko.core.digests import Algorithm, Digest
    from soko.service.store import Store
    data, count = pathlib.Path(sys.argv[1]), int(sys.argv[2])
    store = Store.open_local(pathlib.Path(sys.argv[3]))
    steps, acks = os.fdopen(int(sys.argv[4]), "w"), os.fdopen(int(sys.argv[5]), "r")
    long_ago = time.time() - 7200

    def collected():
        if not acks.readline():
            sys.exit("the collector stopped answering")

    shared = data / "shared.bin"
    shared.write_bytes(os.urandom(10_000))
    with soko.init(project="proj") as run:
        for i in range(count):
            live = soko.Artifact("live", "dataset")
            live.add_file(str(shared))
            unique = data / f"live-{i}.bin"
            unique.write_bytes(os.urandom(4096))
            live.add_file(str(unique))
            run.log_artifact(live).wait()
            # A version that is deleted at once: garbage for the collector to find. Its
            # own blob is aged past the grace period, as if it had been logged long ago.
            scratch = soko.Artifact("scratch", "dataset")
            scratch.add_file(str(shared))
            junk = data / f"scratch-{i}.bin"
            junk.write_bytes(os.urandom(4096))
            scratch.add_file(str(junk))
            run.log_artifact(scratch).wait()
            scratch.delete()
            junk_digest = Digest.of_bytes(junk.read_bytes(), Algorithm.XXH128)
            os.utime(store.blobs.local_path(junk_digest), (long_ago, long_ago))
            if i:
                collected()
            steps.write(f"{i}\\n")
            steps.flush()
        collected()
    print("logged", count)
    """
)

_COLLECTOR = textwrap.dedent(
    """
    import json, os, sys, pathlib
    from soko.service.gc import collect_garbage
    from soko.service.store import Store
    store = Store.open_local(pathlib.Path(sys.argv[1]))
    grace = float(sys.argv[2])
    steps, acks = os.fdopen(int(sys.argv[3]), "r"), os.fdopen(int(sys.argv[4]), "w")
    runs = deleted_while_logging = 0
    for step in steps:  # until the logger, done, closes its end
        report = collect_garbage(store, grace_seconds=grace)
        runs += 1
        deleted_while_logging += len(report.deleted)
        acks.write(step)
        acks.flush()
    collect_garbage(store, grace_seconds=grace)
    runs += 1
    print(json.dumps({"runs": runs, "deleted_while_logging": deleted_while_logging}))
    """
)


def test_a_log_running_while_gc_runs_loses_nothing(store: Store, soko_env, tmp_path: Path):
    count, grace = 30, 3.0
    # Old garbage for the first collections: ten deleted versions, two hours old.
    for i in range(10):
        _log("old", {"o.txt": f"old {i}"}, tmp_path).delete()
    _age(store, 2 * HOUR)
    old_garbage = _blobs(store)
    data = tmp_path / "data"
    data.mkdir()
    env = {**os.environ, "SOKO_SILENT": "true"}
    steps_read, steps_write = os.pipe()
    acks_read, acks_write = os.pipe()
    collector_ends = (str(steps_read), str(acks_write))
    logger_ends = (str(steps_write), str(acks_read))
    try:
        collector = subprocess.Popen(
            [sys.executable, "-c", _COLLECTOR, str(soko_env.store), str(grace), *collector_ends],
            pass_fds=(steps_read, acks_write),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        logger = subprocess.Popen(
            [
                sys.executable,
                "-c",
                _LOGGER,
                str(data),
                str(count),
                str(soko_env.store),
                *logger_ends,
            ],
            pass_fds=(steps_write, acks_read),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
    finally:
        # Only the children hold the pipes: the collector sees their end when the logger ends.
        for fd in (steps_read, steps_write, acks_read, acks_write):
            os.close(fd)
    logged, logger_errors = logger.communicate(timeout=300)
    out, err = collector.communicate(timeout=120)
    assert logger.returncode == 0, logger_errors
    assert logged.strip() == f"logged {count}"
    assert collector.returncode == 0, err
    stats = json.loads(out)
    assert stats["runs"] == count + 1
    # The collector deleted the old garbage and every scratch version's own blob while the
    # logger was still logging.
    assert stats["deleted_while_logging"] >= len(old_garbage) + count

    records = versions.list_versions(store, "local", "proj", "live")
    assert [r.version for r in records] == [f"v{i}" for i in range(count)]
    assert check_store(store).ok
    shared = (data / "shared.bin").read_bytes()
    for i, record in enumerate(records):
        artifact = soko.Api().artifact(f"proj/live:{record.version}")
        root = Path(artifact.download(root=str(tmp_path / "out" / record.version)))
        assert (root / "shared.bin").read_bytes() == shared
        assert (root / f"live-{i}.bin").read_bytes() == (data / f"live-{i}.bin").read_bytes()

    # What is left after a last collection is exactly what the live versions need.
    collect_garbage(store, grace_seconds=0)
    with store.engine.connect() as conn:
        live = live_versions(conn)
    needed: set[Digest] = set()
    for version in live:
        assert version.manifest_blob is not None
        needed.add(ManifestRef.parse(version.manifest_blob).digest)
        algorithm = Algorithm.parse(version.algorithm)
        needed |= store.load_manifest(version.manifest_blob, algorithm).blob_digests()
    assert _blobs(store) == needed
    assert not old_garbage & needed
