"""``soko verify``, ``soko gc``, ``soko artifact cache cleanup`` and ``soko --version``,
run as the real executable."""

from __future__ import annotations

import json
import os
import time
from importlib import metadata
from pathlib import Path

import pytest
from cli_helpers import RunSoko, TreeFactory, assert_user_error

import soko
from soko.client.cache import BlobCache
from soko.core.digests import Algorithm, Digest
from soko.storage.base import blob_key

HOUR = 3600


def _log(project: str, name: str, files: dict[str, str], make_tree: TreeFactory) -> soko.Artifact:
    with soko.init(project=project) as run:
        artifact = soko.Artifact(name, "dataset")
        artifact.add_dir(str(make_tree(files)))
        run.log_artifact(artifact).wait()
    return artifact


def _blob_path(store: Path, content: bytes | str, algorithm: Algorithm = Algorithm.XXH128) -> Path:
    data = content.encode() if isinstance(content, str) else content
    return store / "store" / blob_key(Digest.of_bytes(data, algorithm))


def _manifest_path(store: Path, artifact: soko.Artifact) -> Path:
    record = artifact._record
    assert record is not None and record.manifest_blob is not None
    alg, _, hex_digest = record.manifest_blob.partition(":")
    return store / "store" / "blobs" / alg / hex_digest[:2] / hex_digest


def _age_store(store: Path, seconds: float) -> None:
    """Make every blob look *seconds* old, as if written that long ago."""
    past = time.time() - seconds
    for path in (store / "store" / "blobs").rglob("*"):
        if path.is_file():
            os.utime(path, (past, past))


def _blob_count(store: Path) -> int:
    return sum(1 for p in (store / "store" / "blobs").rglob("*") if p.is_file())


# ----- verify -------------------------------------------------------------------------


def test_verify_clean_store(soko_cli: RunSoko, soko_env, make_tree: TreeFactory):
    _log("proj", "ds", {"a.txt": "alpha", "b.txt": "beta"}, make_tree)
    result = soko_cli("verify")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip().splitlines()[-1].startswith("Checked 3 blobs")
    assert result.stdout.strip().endswith("1 version: no problems.")
    report = json.loads(soko_cli("verify", "--json").stdout)
    assert report["ok"] is True
    assert report["problems"] == []
    assert report["blobs_checked"] == 3
    assert report["versions_checked"] == 1


def test_verify_and_gc_say_which_store_they_work_on(
    soko_cli: RunSoko, soko_env, make_tree: TreeFactory
):
    _log("proj", "ds", {"a.txt": "alpha"}, make_tree)
    for command in (("verify",), ("gc", "--dry-run")):
        result = soko_cli(*command)
        assert result.returncode == 0, result.stderr
        assert result.stderr.splitlines()[0] == f"Store: the embedded store at {soko_env.store}"
        report = json.loads(soko_cli(*command, "--json").stdout)
        assert report["store"] == str(soko_env.store)
        # Logged in to a server, the commands still work here, and say so.
        result = soko_cli(*command, env={"SOKO_BASE_URL": "http://127.0.0.1:9"})
        assert result.returncode == 0, result.stderr
        assert "uses the server http://127.0.0.1:9" in result.stderr
        assert f"`soko {command[0]}` works on the embedded store in SOKO_DIR" in result.stderr


def test_verify_names_each_problem(soko_cli: RunSoko, soko_env, make_tree: TreeFactory):
    _log("proj", "one", {"a.txt": "alpha"}, make_tree)
    two = _log("proj", "two", {"b.txt": "beta"}, make_tree)
    _log("proj", "three", {"c.txt": "gamma"}, make_tree)
    assert soko_cli("verify").returncode == 0

    # A flipped byte in the blob of a.txt.
    flipped = _blob_path(soko_env.store, "alpha")
    flipped.chmod(0o644)
    flipped.write_bytes(b"Alpha")
    # The manifest blob of two:v0 is gone.
    manifest = _manifest_path(soko_env.store, two)
    manifest.unlink()
    # The blob of c.txt, which the manifest of three:v0 names, is gone.
    _blob_path(soko_env.store, "gamma").unlink()

    result = soko_cli("verify")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stdout.splitlines() if line.startswith("ERROR")]
    alpha = Digest.of_bytes(b"alpha", Algorithm.XXH128)
    gamma = Digest.of_bytes(b"gamma", Algorithm.XXH128)
    actual = Digest.of_bytes(b"Alpha", Algorithm.XXH128)
    assert sorted(errors) == sorted(
        [
            f"ERROR corrupt blob {alpha}: its 5 bytes hash to {actual}; breaks "
            "local/proj/one:v0 ('a.txt'); moved to the quarantine",
            f"ERROR missing manifest blob xxh128:{manifest.name} of version local/proj/two:v0",
            f"ERROR missing blob {gamma}, named by 'c.txt' of local/proj/three:v0",
        ]
    )
    assert result.stdout.strip().endswith("3 problems.")
    assert "soko verify --repair" in result.stderr
    assert not flipped.exists()
    assert (soko_env.store / "store" / "quarantine" / "xxh128" / alpha.hex).read_bytes() == (
        b"Alpha"
    )

    # Checked again: the blob set aside is still reported, with the versions it breaks.
    report = json.loads(soko_cli("verify", "--json").stdout)
    assert report["ok"] is False
    corrupt = [p for p in report["problems"] if p["kind"] == "corrupt_blob"]
    assert [p["versions"] for p in corrupt] == [["local/proj/one:v0"]]
    assert "set aside" in corrupt[0]["message"]
    assert sorted((p["kind"], p["subject"]) for p in report["problems"]) == sorted(
        [
            ("corrupt_blob", str(alpha)),
            ("missing_manifest", f"xxh128:{manifest.name}"),
            ("missing_blob", str(gamma)),
        ]
    )


def test_verify_reports_stale_temp_files_as_notes(soko_cli: RunSoko, soko_env, make_tree):
    _log("proj", "ds", {"a.txt": "alpha"}, make_tree)
    leftover = soko_env.store / "store" / "tmp" / "4242-4242-deadbeef.tmp"
    leftover.write_bytes(b"half a blob")
    result = soko_cli("verify")
    assert result.returncode == 0, result.stdout
    notes = [line for line in result.stdout.splitlines() if line.startswith("note")]
    assert len(notes) == 1 and "4242-4242-deadbeef.tmp" in notes[0]


def test_verify_and_gc_need_a_store(soko_cli: RunSoko, soko_env):
    assert_user_error(soko_cli("verify"), 3, f"No soko store at {soko_env.store}")
    assert_user_error(soko_cli("gc"), 3, f"No soko store at {soko_env.store}")
    assert not soko_env.store.exists()  # neither created one


# ----- gc -----------------------------------------------------------------------------


def test_gc_dry_run_then_gc(soko_cli: RunSoko, soko_env, make_tree: TreeFactory):
    keep = _log("proj", "keep", {"shared.txt": "shared", "k.txt": "kept"}, make_tree)
    gone = _log("proj", "gone", {"shared.txt": "shared", "g.txt": "garbage"}, make_tree)
    assert gone._record is not None
    manifest_key = gone._record.manifest_blob
    gone.delete()
    _age_store(soko_env.store, 2 * HOUR)
    before = _blob_count(soko_env.store)
    assert before == 5  # shared, kept, garbage and two manifests
    # Freed: g.txt's blob and gone:v0's manifest; shared.txt is still used by keep:v0.
    expected = sorted([str(Digest.of_bytes(b"garbage", Algorithm.XXH128)), str(manifest_key)])

    dry = soko_cli("gc", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.startswith("Would delete 2 of 5 blobs (")
    assert "3 are in use." in dry.stdout
    assert _blob_count(soko_env.store) == before

    report = json.loads(soko_cli("gc", "--dry-run", "--json").stdout)
    assert report["dry_run"] is True
    assert sorted(report["deleted"]) == expected
    assert _blob_count(soko_env.store) == before

    real = soko_cli("gc", "--json")
    assert real.returncode == 0, real.stderr
    assert sorted(json.loads(real.stdout)["deleted"]) == expected
    assert _blob_count(soko_env.store) == before - 2
    again = soko_cli("gc")
    assert again.stdout.startswith("Deleted 0 of 3 blobs (0 B); 3 are in use.")
    assert soko_cli("verify").returncode == 0
    root = keep.download(root=str(soko_env.workdir / "keep"))
    assert (Path(root) / "shared.txt").read_text() == "shared"


def test_gc_grace_period(soko_cli: RunSoko, soko_env, make_tree: TreeFactory):
    _log("proj", "gone", {"g.txt": "garbage"}, make_tree).delete()
    before = _blob_count(soko_env.store)
    young = soko_cli("gc")  # default grace: 1h; the blobs are seconds old
    assert young.returncode == 0
    assert young.stdout.startswith(f"Deleted 0 of {before} blobs")
    assert "Kept 2 unreferenced blobs younger than the grace period (1h)." in young.stderr
    assert _blob_count(soko_env.store) == before
    now = soko_cli("gc", "--grace", "0")
    assert now.stdout.startswith(f"Deleted 2 of {before} blobs")
    assert _blob_count(soko_env.store) == before - 2


def test_gc_bad_grace(soko_cli: RunSoko, soko_env, make_tree: TreeFactory):
    _log("proj", "ds", {"a.txt": "a"}, make_tree)
    assert_user_error(soko_cli("gc", "--grace", "soon"), 2, "Cannot parse duration 'soon'")
    assert_user_error(soko_cli("gc", "--grace=-5m"), 2, "'-5m'")


# ----- cache cleanup ------------------------------------------------------------------


def _fill_cache(cache_dir: Path, count: int, size: int) -> list[Digest]:
    cache = BlobCache(cache_dir)
    digests = []
    now = time.time()
    for i in range(count):
        data = bytes([i]) * size
        digest = Digest.of_bytes(data, Algorithm.MD5)
        path = cache.put_chunks(digest, [data])
        # Blob i was last used i minutes after blob 0.
        os.utime(path, (now - HOUR + 60 * i, now - HOUR + 60 * i))
        digests.append(digest)
    return digests


def test_cache_cleanup_removes_least_recently_used(soko_cli: RunSoko, soko_env):
    digests = _fill_cache(soko_env.cache, 6, 1000)
    cache = BlobCache(soko_env.cache)
    assert cache.get(digests[0]) is not None  # blob 0 becomes the most recently used

    result = soko_cli("artifact", "cache", "cleanup", "3.5kB")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Removed 3 files (3.0 kB) from ")
    assert result.stdout.strip().endswith("it now holds 3.0 kB.")
    assert [cache.contains(d) for d in digests] == [True, False, False, False, True, True]
    assert cache.size() == 3000


def test_cache_cleanup_remove_temp(soko_cli: RunSoko, soko_env):
    _fill_cache(soko_env.cache, 2, 100)
    stale = soko_env.cache / "tmp" / "1-1-abc.tmp"
    stale.parent.mkdir(parents=True, exist_ok=True)
    stale.write_bytes(b"partial")
    os.utime(stale, (time.time() - HOUR, time.time() - HOUR))
    live = soko_env.cache / "tmp" / "2-2-def.tmp"
    live.write_bytes(b"being written")

    kept = soko_cli("artifact", "cache", "cleanup", "1GB")
    assert kept.stdout.startswith("Removed 0 files (0 B) from ")
    assert stale.exists()
    result = soko_cli("artifact", "cache", "cleanup", "1GB", "--remove-temp")
    assert result.stdout.startswith("Removed 0 files (0 B) and 1 temp files from ")
    assert not stale.exists() and live.exists()
    assert BlobCache(soko_env.cache).size() == 200


@pytest.mark.parametrize("size", ["12XB", "lots", "1.2.3GB", ""])
def test_cache_cleanup_bad_size(soko_cli: RunSoko, soko_env, size: str):
    digests = _fill_cache(soko_env.cache, 2, 100)
    assert_user_error(soko_cli("artifact", "cache", "cleanup", size), 2, "Cannot parse size")
    assert all(BlobCache(soko_env.cache).contains(d) for d in digests)


# ----- version --------------------------------------------------------------


def test_version_and_usage(soko_cli: RunSoko, soko_env):
    result = soko_cli("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"soko {metadata.version('soko')}"
    assert_user_error(soko_cli("frobnicate"), 2, "frobnicate")


def test_bare_commands_print_help(soko_cli: RunSoko, soko_env):
    bare = soko_cli()
    assert bare.returncode == 0, bare.stderr
    assert bare.stdout.startswith("usage: soko ")
    for command in ("artifact", "projects", "lineage", "login", "whoami", "verify", "gc"):
        assert command in bare.stdout
    group = soko_cli("artifact")
    assert group.returncode == 0, group.stderr
    assert group.stdout.startswith("usage: soko artifact ")
    nested = soko_cli("artifact", "alias")
    assert nested.returncode == 0, nested.stderr
    assert "add" in nested.stdout and "rm" in nested.stdout
    assert not soko_env.store.exists()


def test_typos_get_a_suggestion(soko_cli: RunSoko, soko_env):
    assert_user_error(soko_cli("artifcat", "ls", "p"), 2, "did you mean 'artifact'?")
    assert_user_error(soko_cli("artifact", "lss", "p"), 2, "did you mean 'ls'?")
    assert_user_error(soko_cli("artifact", "ls", "p", "--jsn"), 2, "did you mean '--json'?")
    assert_user_error(soko_cli("whoamy"), 2, "did you mean 'whoami'?")
    # Nothing close: no guess.
    result = soko_cli("zzzzzz")
    assert_user_error(result, 2, "zzzzzz")
    assert "did you mean" not in result.stderr
