"""Packs of the local store: batches of small blobs in one file each, found by an index."""

from __future__ import annotations

import contextlib
import errno
import os
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from soko.core.digests import Algorithm, BatchedDigests, Digest, digest_batches
from soko.errors import DigestMismatchError, NotFoundError, StoreError
from soko.storage import durability
from soko.storage import packs as packs_module
from soko.storage.base import blob_key
from soko.storage.capabilities import BatchReads
from soko.storage.local import PACK_MIN_BLOBS, LocalBlobStore
from soko.storage.pack_index import INDEX_NAME
from soko.storage.packs import MAX_PACKED

Item = tuple[Digest, bytes, str]


def make_files(folder: Path, count: int, *, size: int = 100, tag: str = "") -> list[Item]:
    folder.mkdir(parents=True, exist_ok=True)
    items = []
    for i in range(count):
        data = f"{tag}{i}:".encode() + os.urandom(size)
        algorithm = (Algorithm.MD5, Algorithm.XXH128)[i % 2]
        path = folder / f"{tag}f{i}"
        path.write_bytes(data)
        items.append((Digest.of_bytes(data, algorithm), data, str(path)))
    return items


def pack_files(root: Path) -> list[Path]:
    return sorted((root / "packs").glob("*.pack"))


def put(store: LocalBlobStore, items: list[Item]) -> list[int]:
    return store.put_files([(d, path) for d, _, path in items])


def one_pack(tmp_path: Path) -> tuple[LocalBlobStore, list[Item], Path]:
    """A store under ``tmp_path/store`` holding 40 small blobs in its one pack."""
    root = tmp_path / "store"
    store = LocalBlobStore(root)
    items = make_files(tmp_path / "src", 40)
    put(store, items)
    (pack,) = pack_files(root)
    return store, items, pack


def test_a_batch_of_small_files_goes_into_one_pack_and_reads_back(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "store")
    items = make_files(tmp_path / "src", 100)

    sizes = put(store, items)

    assert sizes == [len(data) for _, data, _ in items]
    assert len(pack_files(tmp_path / "store")) == 1
    assert store.missing(d for d, _, _ in items) == set()
    for digest, data, _ in items:
        assert store.read_bytes(digest) == data
        with store.open(digest) as stream:
            assert stream.read() == data
        assert store.stat(digest).size == len(data)
        assert store.exists(digest)
        # No loose file: a pack holds it.
        assert not (tmp_path / "store" / blob_key(digest)).exists()
    listed = list(store.list())
    assert sorted((i.digest.hex, i.size) for i in listed) == sorted(
        (d.hex, len(data)) for d, data, _ in items
    )
    assert {i.digest for i in store.list(Algorithm.MD5)} == {
        d for d, _, _ in items if d.algorithm is Algorithm.MD5
    }
    assert os.listdir(tmp_path / "store" / "tmp") == []


def test_a_pack_of_more_blobs_than_one_insert_writes_has_a_row_for_each(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "store")
    blobs = [(i.to_bytes(4, "big") + os.urandom(20)) for i in range(1_201)]
    digests = [Digest.of_bytes(data, Algorithm.XXH128) for data in blobs]

    store.put_blobs(list(zip(digests, blobs, strict=True)))

    assert len(pack_files(tmp_path / "store")) == 1
    assert store.missing(digests) == set()
    assert dict(store.packs.read_many(digests)) == dict(zip(digests, blobs, strict=True))


def test_large_files_and_small_batches_stay_loose(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "store")
    items = make_files(tmp_path / "src", PACK_MIN_BLOBS)
    big = make_files(tmp_path / "big", 1, size=MAX_PACKED + 1)
    put(store, items + big)
    (big_digest, big_data, _) = big[0]
    assert (tmp_path / "store" / blob_key(big_digest)).read_bytes() == big_data
    assert store.read_bytes(big_digest) == big_data

    few = make_files(tmp_path / "few", PACK_MIN_BLOBS - 1, tag="few")
    put(store, few)
    for digest, data, _ in few:
        assert (tmp_path / "store" / blob_key(digest)).read_bytes() == data


def test_a_changed_file_fails_the_batch_naming_it(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "store")
    items = make_files(tmp_path / "src", 50)
    changed = items[17][2]
    Path(changed).write_bytes(b"not what was hashed")

    with pytest.raises(DigestMismatchError, match="f17"):
        put(store, items)
    assert pack_files(tmp_path / "store") == []
    assert store.missing(d for d, _, _ in items) == {d for d, _, _ in items}


def test_held_contents_are_stored_instead_of_the_files_and_verified(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "store")
    items = make_files(tmp_path / "src", 40)
    for _, _, path in items:
        Path(path).write_bytes(b"edited after hashing")  # the held bytes are what counts
    store.put_files([(d, p) for d, _, p in items], contents={d: data for d, data, _ in items})
    for digest, data, _ in items:
        assert store.read_bytes(digest) == data

    wrong = make_files(tmp_path / "wrong", 40, tag="w")
    contents = {d: data for d, data, _ in wrong}
    contents[wrong[3][0]] = b"held bytes that do not match"
    with pytest.raises(DigestMismatchError):
        store.put_files([(d, p) for d, _, p in wrong], contents=contents)
    assert store.exists(wrong[3][0]) is False


def age_packed(root: Path, seconds: float) -> None:
    """Make every packed blob of the store at *root* look *seconds* older: its ``written``
    in the index is what a loose blob's mtime is, and nothing in the API moves it back."""
    with contextlib.closing(sqlite3.connect(root / "packs" / "index.db")) as db, db:
        db.execute("UPDATE packed SET written = written - ?", (seconds,))


def test_putting_packed_blobs_again_writes_no_pack_and_refreshes_them(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "store")
    items = make_files(tmp_path / "src", 40)
    put(store, items)
    age_packed(tmp_path / "store", 3600)
    before = store.stat(items[0][0]).modified
    put(store, items)
    assert len(pack_files(tmp_path / "store")) == 1
    assert store.stat(items[0][0]).modified > before
    # put_file of a packed blob finds it too, and does not store it loose.
    digest, data, path = items[1]
    assert store.put_file(digest, path) == len(data)
    assert not (tmp_path / "store" / blob_key(digest)).exists()


def test_a_batch_naming_packed_blobs_with_wrong_bytes_is_refused(tmp_path: Path) -> None:
    # A server stores a client's batch with put_blobs and takes success as proof that the
    # client holds the bytes: a blob packed already must not let other bytes pass.
    store = LocalBlobStore(tmp_path / "store")
    items = make_files(tmp_path / "src", 40)
    put(store, items)
    batch = [(d, data) for d, data, _ in items]
    batch[5] = (batch[5][0], b"not the bytes of this digest")
    with pytest.raises(DigestMismatchError):
        store.put_blobs(batch)
    assert store.read_bytes(items[5][0]) == items[5][1]


def test_a_blob_both_loose_and_packed_is_listed_once(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "store")
    items = make_files(tmp_path / "src", 40)
    digest, data, _ = items[0]
    store.put_bytes(digest, data)  # loose first: the batch writer does not look for it
    put(store, items)
    assert [i.digest for i in store.list()].count(digest) == 1
    store.delete(digest)
    assert digest in store.missing([digest])


def test_deleted_blobs_are_reclaimed_by_compaction(tmp_path: Path) -> None:
    root = tmp_path / "store"
    store = LocalBlobStore(root)
    first = make_files(tmp_path / "a", 40, tag="a")
    second = make_files(tmp_path / "b", 40, tag="b")
    put(store, first)
    (pack_a,) = pack_files(root)
    put(store, second)
    assert len(pack_files(root)) == 2

    store.delete_many([d for d, _, _ in first])  # the whole first pack is dead
    store.delete_many([d for d, _, _ in second[:30]])  # three quarters of the second
    dry = store.compact(0, dry_run=True)
    assert (dry.packs_deleted, dry.packs_rewritten) == (1, 1)
    assert dry.bytes_reclaimed == sum(len(data) for _, data, _ in first + second[:30])
    assert len(pack_files(root)) == 2

    young = store.compact(3600)  # an empty pack this young may be a writer's: kept
    assert (young.packs_deleted, young.packs_rewritten) == (0, 1)
    assert store.compact(0).packs_deleted == 1
    remaining = pack_files(root)
    assert len(remaining) == 1 and pack_a not in remaining
    for digest, data, _ in second[30:]:
        assert store.read_bytes(digest) == data
    assert store.missing(d for d, _, _ in second[30:]) == set()


@pytest.fixture
def orphan_store(tmp_path: Path) -> tuple[LocalBlobStore, list[Item]]:
    """A store where a writer wrote its pack and died before indexing it."""
    store = LocalBlobStore(tmp_path / "store")
    items = make_files(tmp_path / "src", 40)

    publish = store.packs._publish

    def publish_then_die(temp: str, name: str) -> None:
        publish(temp, name)
        raise KeyboardInterrupt("killed between the pack's rename and its index rows")

    store.packs._publish = publish_then_die  # type: ignore[method-assign]
    with pytest.raises(KeyboardInterrupt):
        put(store, items)
    del store.packs._publish
    return store, items


def test_a_writer_dying_before_the_index_leaves_nothing_visible(
    orphan_store: tuple[LocalBlobStore, list[Item]], tmp_path: Path
) -> None:
    store, items = orphan_store
    assert len(pack_files(tmp_path / "store")) == 1
    assert store.missing(d for d, _, _ in items) == {d for d, _, _ in items}
    assert list(store.list()) == []
    with pytest.raises(NotFoundError):
        store.read_bytes(items[0][0])

    assert store.compact(3600).packs_deleted == 0  # could be a live writer's
    assert store.compact(0).packs_deleted == 1
    assert pack_files(tmp_path / "store") == []
    put(store, items)  # the next log works
    assert store.missing(d for d, _, _ in items) == set()


def test_a_truncated_or_missing_pack_is_a_store_error(tmp_path: Path) -> None:
    store, items, pack = one_pack(tmp_path)
    pack.chmod(0o644)
    with open(pack, "r+b") as handle:
        handle.truncate(len(items[0][1]))
    assert store.read_bytes(items[0][0]) == items[0][1]
    with pytest.raises(StoreError, match="truncated"):
        store.read_bytes(items[-1][0])
    pack.unlink()
    with pytest.raises(StoreError, match="missing"):
        store.read_bytes(items[0][0])
    with pytest.raises(StoreError, match="missing"):
        list(store.read_packed([items[0][0]]))


def test_read_packed_returns_only_packed_blobs_one_open_per_pack(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "store")
    items = make_files(tmp_path / "src", 40)
    put(store, items)
    loose, loose_data = Digest.of_bytes(b"loose"), b"loose"
    store.put_bytes(loose, loose_data)
    got = dict(store.read_packed([d for d, _, _ in items] + [loose]))
    assert got == {d: data for d, data, _ in items}


def test_sizes_are_the_stored_ones_packed_or_loose_and_leave_out_absent_blobs(
    tmp_path: Path,
) -> None:
    store = LocalBlobStore(tmp_path / "store")
    items = make_files(tmp_path / "src", PACK_MIN_BLOBS, size=300)
    put(store, items)
    loose_data = os.urandom(5000)
    loose = Digest.of_bytes(loose_data)
    store.put_bytes(loose, loose_data)
    absent = Digest.of_bytes(b"never stored")
    sizes = store.sizes([d for d, _, _ in items] + [loose, absent])
    assert sizes == {**{d: len(data) for d, data, _ in items}, loose: 5000}
    assert isinstance(store, BatchReads)


def test_sized_reads_read_the_packed_blobs_where_the_sizing_found_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = LocalBlobStore(tmp_path / "store")
    items = make_files(tmp_path / "src", PACK_MIN_BLOBS)
    put(store, items)
    loose_data = os.urandom(500)
    loose = Digest.of_bytes(loose_data)
    store.put_bytes(loose, loose_data)
    asked = [d for d, _, _ in items] + [loose]

    reads = store.sized_reads(asked)

    assert reads.sizes == store.sizes(asked)

    def no_lookup(*_: object) -> None:
        raise AssertionError("the packed blobs were looked up again")

    monkeypatch.setattr(store.packs, "locate", no_lookup)
    assert dict(reads.read_packed()) == {d: data for d, data, _ in items}


def test_sized_reads_find_a_blob_whose_pack_was_rewritten_since(tmp_path: Path) -> None:
    store, items, old = one_pack(tmp_path)
    store.delete_many([d for d, _, _ in items[:30]])  # mostly dead: to be rewritten
    live = items[30:]
    reads = store.sized_reads(d for d, _, _ in live)

    assert store.compact(0).packs_rewritten == 1
    assert not old.exists()

    assert dict(reads.read_packed()) == {d: data for d, data, _ in live}


def test_packs_are_cut_at_the_target_size(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("soko.storage.local.PACK_TARGET", 1000)
    store = LocalBlobStore(tmp_path / "store")
    items = make_files(tmp_path / "src", 40, size=100)  # ~4 KiB in all
    put(store, items)
    assert len(pack_files(tmp_path / "store")) >= 4
    for digest, data, _ in items:
        assert store.read_bytes(digest) == data


def test_the_index_is_only_created_when_a_pack_is_written(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "store")
    digest, data = Digest.of_bytes(b"one"), b"one"
    store.put_bytes(digest, data)
    assert store.missing([digest]) == set()
    assert not (tmp_path / "store" / "packs" / INDEX_NAME).exists()


_BATCH_WRITER = textwrap.dedent(
    """
    import sys
    from soko.core.digests import Algorithm, Digest
    from soko.storage.local import LocalBlobStore

    store = LocalBlobStore(sys.argv[1])
    items = []
    for arg in sys.argv[2:]:
        alg, hex_digest, path = arg.split(",", 2)
        items.append((Digest.from_hex(hex_digest, Algorithm.parse(alg)), path))
    sys.stdin.readline()
    store.put_files(items)
    print("done")
    """
)


def test_two_processes_pack_overlapping_batches_at_once(tmp_path: Path) -> None:
    root = tmp_path / "store"
    items = make_files(tmp_path / "src", 200)
    halves = [items[:150], items[50:]]  # 100 blobs in both batches
    writers = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                _BATCH_WRITER,
                str(root),
                *[f"{d.algorithm.value},{d.hex},{p}" for d, _, p in half],
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for half in halves
    ]
    for writer in writers:
        assert writer.stdin is not None
        writer.stdin.write("go\n")
        writer.stdin.flush()
    outputs = [w.communicate(timeout=120)[0] for w in writers]
    assert outputs == ["done\n", "done\n"]
    store = LocalBlobStore(root)
    assert sorted(i.digest.hex for i in store.list()) == sorted(d.hex for d, _, _ in items)
    for digest, data, _ in items:
        assert store.read_bytes(digest) == data
    assert os.listdir(root / "tmp") == []


def test_short_writes_of_a_pack_still_write_every_byte(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_writev = os.writev

    def short_writev(fd: int, buffers: list[memoryview]) -> int:
        # At most 1000 bytes a call, cutting through the middle of buffers.
        budget, taken = 1000, []
        for buffer in buffers:
            taken.append(buffer[: budget - sum(len(b) for b in taken)])
            if sum(len(b) for b in taken) >= budget:
                break
        return real_writev(fd, taken)

    monkeypatch.setattr(packs_module.os, "writev", short_writev)
    store = LocalBlobStore(tmp_path / "store")
    items = make_files(tmp_path / "src", 40, size=333)
    put(store, items)
    for digest, data, _ in items:
        assert store.read_bytes(digest) == data


def test_a_rewrite_whose_commit_fails_keeps_the_old_pack(tmp_path: Path) -> None:
    store, items, old = one_pack(tmp_path)
    store.delete_many([d for d, _, _ in items[:30]])  # mostly dead: to be rewritten
    real = store.packs._transaction

    @contextlib.contextmanager
    def no_commit() -> Iterator[object]:
        with real() as conn:
            yield conn
            raise KeyboardInterrupt("killed before the commit")

    store.packs._transaction = no_commit  # type: ignore[method-assign]
    with pytest.raises(KeyboardInterrupt):
        store.compact(0)
    del store.packs._transaction
    assert old.exists()  # the rows still point at it
    for digest, data, _ in items[30:]:
        assert store.read_bytes(digest) == data
    assert store.compact(0).packs_rewritten == 1
    for digest, data, _ in items[30:]:
        assert store.read_bytes(digest) == data


def test_compaction_never_deletes_a_pack_whose_rows_are_being_written(tmp_path: Path) -> None:
    root = tmp_path / "store"
    writer = LocalBlobStore(root)
    put(writer, make_files(tmp_path / "first", 40, tag="x"))  # the index exists
    items = make_files(tmp_path / "src", 40)
    publish = writer.packs._publish
    renamed = threading.Event()
    collector_locks = threading.Event()
    long_ago = time.time() - 3600

    def publish_and_pause(temp: str, name: str) -> None:
        publish(temp, name)
        # The pack is in packs/, its rows not committed yet, and it looks old: nothing but
        # the index's write lock keeps the collector from deleting it.
        os.utime(writer.packs.pack_path(name), (long_ago, long_ago))
        renamed.set()
        collector_locks.wait(10)  # the writer commits once the collector wants the lock

    writer.packs._publish = publish_and_pause  # type: ignore[method-assign]
    thread = threading.Thread(target=put, args=(writer, items))
    thread.start()
    assert renamed.wait(10)
    # Another process's collector, with no grace at all (its own index connection).
    collector = packs_module.Packs(str(root), lambda: str(root / "tmp" / "never-used"))
    transaction = collector._transaction

    def announced_transaction() -> contextlib.AbstractContextManager[sqlite3.Connection]:
        collector_locks.set()
        return transaction()

    collector._transaction = announced_transaction  # type: ignore[method-assign]
    report = collector.compact(grace_seconds=0)
    thread.join()
    assert collector_locks.is_set()  # the collector did go for the pack
    assert report.packs_deleted == 0
    for digest, data, _ in items:
        assert writer.read_bytes(digest) == data


def test_a_blob_another_process_left_unsynced_is_flushed_by_the_next_sync(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "store"
    store = LocalBlobStore(root)
    digest, data = Digest.of_bytes(b"written elsewhere"), b"written elsewhere"
    path = root / blob_key(digest)
    path.parent.mkdir(parents=True)
    path.write_bytes(data)  # as another process's put would leave it, before its sync
    flushed: list[str] = []
    monkeypatch.setattr(durability, "fsync_file", flushed.append)
    assert store.missing([digest]) == set()  # the log counts on it...
    store.sync()  # ...so the commit's sync flushes it
    assert flushed == [str(path)]


def test_gc_age_of_a_blob_is_its_latest_write_loose_or_packed(tmp_path: Path) -> None:
    root = tmp_path / "store"
    store = LocalBlobStore(root)
    items = make_files(tmp_path / "src", 40)
    digest, data, _ = items[0]
    store.put_bytes(digest, data)
    old = time.time() - 7200
    os.utime(root / blob_key(digest), (old, old))
    put(store, items)  # a fresh packed copy beside the old loose one
    assert store.stat(digest).modified > old + 3600

    cutoff = time.time() - 3600
    store.delete_many([items[1][0]], written_before=cutoff)  # packed just now: kept
    assert store.exists(items[1][0])
    store.delete_many([items[1][0]], written_before=time.time() + 1)
    assert not store.exists(items[1][0])


def test_a_read_only_version_1_store_opens_as_it_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "store"
    digest, data = Digest.of_bytes(b"old"), b"old"
    LocalBlobStore(root).put_bytes(digest, data)
    (root / "format_version").write_bytes(b"1\n")

    def read_only(*_args: object) -> None:
        raise PermissionError(errno.EACCES, "read-only")

    monkeypatch.setattr("soko.storage.layout.os.replace", read_only)
    assert LocalBlobStore(root).read_bytes(digest) == data
    assert (root / "format_version").read_bytes() == b"1\n"


def _bare_packs(root: Path) -> packs_module.Packs:
    (root / "tmp").mkdir(parents=True, exist_ok=True)
    counter = iter(range(10**6))
    return packs_module.Packs(str(root), lambda: str(root / "tmp" / f"{next(counter)}.tmp"))


def _blobs(count: int, tag: bytes) -> list[tuple[Digest, bytes]]:
    data = [tag + bytes([i]) * 50 for i in range(count)]
    return [(Digest.of_bytes(d, Algorithm.XXH128), d) for d in data]


def test_evict_deletes_a_pack_unless_used_since(tmp_path: Path) -> None:
    packs = _bare_packs(tmp_path)
    first = packs.write(_blobs(3, b"a"))
    second = packs.write(_blobs(2, b"b"))
    usage = packs.usage()
    assert {name: used.blobs for name, used in usage.items()} == {first: 3, second: 2}
    listed_at = usage[second].last_written
    packs.touch([_blobs(2, b"b")[0][0]])  # used after it was listed
    assert packs.evict(second, written_before=listed_at + 1e-6) is None
    assert packs.evict(first, written_before=usage[first].last_written + 1e-6) == 3
    assert sorted(packs.pack_files()) == [second]
    assert packs.present(d for d, _ in _blobs(3, b"a")) == set()


def test_forget_missing_packs_drops_only_their_rows(tmp_path: Path) -> None:
    packs = _bare_packs(tmp_path)
    kept, lost = _blobs(2, b"k"), _blobs(2, b"l")
    packs.write(kept)
    gone = packs.write(lost)
    (tmp_path / "packs" / f"{gone}.pack").unlink()
    with pytest.raises(StoreError):
        list(packs.read_many(d for d, _ in lost))
    assert packs.forget_missing_packs() == 1
    assert packs.present(d for d, _ in kept + lost) == {d for d, _ in kept}


def test_the_missing_question_is_answered_a_batch_of_raw_digests_at_a_time(
    tmp_path: Path,
) -> None:
    store, packed, _ = one_pack(tmp_path)
    loose = make_files(tmp_path / "loose", 3, tag="loose")
    for digest, data, _ in loose:
        store.put_bytes(digest, data)
    absent = [d for d, _, _ in make_files(tmp_path / "absent", 5, tag="absent")]
    asked = [d for d, _, _ in packed + loose] + absent
    # Batches of two, each of one algorithm, one digest asked twice: as a manifest's
    # columns give them (BatchedDigests), and one by one.
    batched = BatchedDigests(lambda: digest_batches([*asked, asked[0]], 2))
    assert store.missing(batched) == set(absent)
    assert store.missing(iter(asked)) == set(absent)
    assert store.missing([]) == set()


def test_blobs_packed_back_to_back_are_read_a_run_at_a_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, items, _ = one_pack(tmp_path)
    reads: list[int] = []
    pread = os.pread

    def counting(fd: int, size: int, offset: int) -> bytes:
        reads.append(size)
        return pread(fd, size, offset)

    monkeypatch.setattr(packs_module.os, "pread", counting)
    got = dict(store.read_packed([d for d, _, _ in items]))
    assert got == {d: data for d, data, _ in items}
    assert len(reads) == 1  # 40 small blobs side by side in one pack
    # Runs are cut at a megabyte: as many reads as runs, each blob whole.
    reads.clear()
    monkeypatch.setattr(packs_module, "_RUN_BYTES", 1000)
    assert dict(store.read_packed([d for d, _, _ in items])) == got
    assert 1 < len(reads) < len(items) and max(reads) <= 1000


def test_a_truncated_pack_read_as_a_run_names_the_missing_blob(tmp_path: Path) -> None:
    store, items, pack = one_pack(tmp_path)
    pack.chmod(0o644)
    # Cut inside the 11th blob: the first 10 are whole, the run stops at the cut.
    locations = store.packs.locate([d for d, _, _ in items])
    ordered = sorted(items, key=lambda item: locations[item[0]].offset)
    cut = locations[ordered[10][0]]
    with open(pack, "r+b") as handle:
        handle.truncate(cut.offset + cut.size // 2)
    got: dict[Digest, bytes] = {}
    with pytest.raises(StoreError, match=f"truncated: {cut.size} bytes at offset {cut.offset}"):
        for digest, data in store.read_packed([d for d, _, _ in items]):
            got[digest] = data
    assert got == {d: data for d, data, _ in ordered[:10]}


def test_a_lookup_does_not_wait_for_a_commit_in_progress(tmp_path: Path) -> None:
    # A server's lookups for one upload batch run beside another batch's commit: they
    # read on connections of their own, which see what was committed before.
    store = LocalBlobStore(tmp_path / "store")
    items = make_files(tmp_path / "src", 40)
    put(store, items)
    digests = [d for d, _, _ in items]
    found: list[set[Digest]] = []
    with store.packs._transaction():  # the write lock, as a publication holds it
        looking = threading.Thread(target=lambda: found.append(store.packs.present(digests)))
        looking.start()
        looking.join(timeout=30)
        alive = looking.is_alive()
    looking.join()
    assert not alive
    assert found == [set(digests)]


def test_a_forked_child_looks_up_on_connections_of_its_own(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "store")
    items = make_files(tmp_path / "src", 40)
    put(store, items)
    digests = [d for d, _, _ in items]
    assert store.packs.present(digests) == set(digests)  # a reader kept open in the parent
    parents = list(store.packs._readers)
    pid = os.fork()
    if pid == 0:  # the child: its own connections, the parent's left alone
        ok = False
        try:
            ok = store.packs.present(digests) == set(digests)
            ok = ok and all(r not in store.packs._readers for r in parents)
        finally:
            os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert store.packs.present(digests) == set(digests)
