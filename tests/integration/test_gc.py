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
from soko.core.manifest import Entry, Manifest
from soko.core.records import COMMITTED
from soko.core.requests import CommitRequest
from soko.errors import NotFoundError, StoreError
from soko.service import versions
from soko.service.commit import commit_version
from soko.service.fsck import check_store
from soko.service.gc import collect_garbage, live_versions, read_manifest
from soko.service.store import Store, parse_blob_ref

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
    return parse_blob_ref(artifact._record.manifest_blob)


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

_LOGGER = textwrap.dedent(
    """
    import os, sys, time, pathlib, soko
    data, count = pathlib.Path(sys.argv[1]), int(sys.argv[2])
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
            # A version that is deleted at once: garbage for the collector to find.
            scratch = soko.Artifact("scratch", "dataset")
            scratch.add_file(str(shared))
            junk = data / f"scratch-{i}.bin"
            junk.write_bytes(os.urandom(4096))
            scratch.add_file(str(junk))
            run.log_artifact(scratch).wait()
            scratch.delete()
            time.sleep(0.25)
    print("logged", count)
    """
)

_COLLECTOR = textwrap.dedent(
    """
    import json, sys, time, pathlib
    from soko.service.gc import collect_garbage
    from soko.service.store import Store
    store = Store.open_local(pathlib.Path(sys.argv[1]))
    stop, grace = pathlib.Path(sys.argv[2]), float(sys.argv[3])
    runs = deleted_while_logging = 0
    while True:
        last = stop.exists()
        report = collect_garbage(store, grace_seconds=grace)
        runs += 1
        if not last:
            deleted_while_logging += len(report.deleted)
        if last:
            break
        time.sleep(0.05)
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
    stop = tmp_path / "stop"
    env = {**os.environ, "SOKO_SILENT": "true"}
    collector = subprocess.Popen(
        [sys.executable, "-c", _COLLECTOR, str(soko_env.store), str(stop), str(grace)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    logger = subprocess.run(
        [sys.executable, "-c", _LOGGER, str(data), str(count)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    stop.touch()
    out, err = collector.communicate(timeout=120)
    assert logger.returncode == 0, logger.stderr
    assert logger.stdout.strip() == f"logged {count}"
    assert collector.returncode == 0, err
    stats = json.loads(out)
    assert stats["runs"] >= 3
    # The collector deleted scratch versions' blobs while the logger was still logging.
    assert stats["deleted_while_logging"] >= len(old_garbage) + 1

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
        needed.add(parse_blob_ref(version.manifest_blob))
        needed |= read_manifest(store, version).blob_digests()
    assert _blobs(store) == needed
    assert not old_garbage & needed
