"""The stat cache's digests: found while a file's stat is unchanged, shared by the
processes that open its file, and wrong in no case (a failure costs a re-hash)."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from soko.client import hashing, statcache
from soko.client.hashing import FileStat, HashedFile, hash_files_cached, hash_packed, stat_keys
from soko.client.statcache import BLOCK_BITS, StatCache
from soko.core.digests import Algorithm, Digest

ALG = Algorithm.XXH128


def _files(folder: Path, count: int) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        path = folder / f"f{i:03}"
        path.write_bytes(f"file {i}".encode())
        paths.append(str(path))
    return paths


def _digest(path: str) -> Digest:
    return Digest.of_bytes(Path(path).read_bytes(), ALG)


@pytest.fixture
def not_racy(monkeypatch: pytest.MonkeyPatch) -> None:
    """Files written by the test count as old enough to record."""
    monkeypatch.setattr(statcache, "RACY_SECONDS", 0.0)


@pytest.fixture
def hashed(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The paths hashed from now on."""
    read: list[str] = []
    real = hashing.hash_file

    def counting(path: str, algorithm: Algorithm, *, keep: bool = False) -> HashedFile:
        read.append(path)
        return real(path, algorithm, keep=keep)

    monkeypatch.setattr(hashing, "hash_file", counting)
    return read


@pytest.mark.usefixtures("not_racy")
def test_a_relog_of_unchanged_files_hashes_none_and_a_changed_file_is_hashed_again(
    tmp_path: Path, hashed: list[str]
) -> None:
    paths = _files(tmp_path / "data", 40)
    cache = StatCache(tmp_path / "stat.db")
    first = hash_files_cached(paths, ALG, cache)
    assert len(hashed) == 40
    hashed.clear()

    # Another process: another connection to the same file.
    again = hash_files_cached(paths, ALG, StatCache(tmp_path / "stat.db"))
    assert hashed == []
    assert [(h.path, h.digest, h.size) for h in again] == [
        (h.path, h.digest, h.size) for h in first
    ]

    Path(paths[7]).write_bytes(b"other bytes, another size")
    packed = hash_packed(paths, ALG, cache)
    assert hashed == [paths[7]]
    assert packed.raws == b"".join(_digest(p).raw for p in paths)
    assert list(packed.sizes) == [os.path.getsize(p) for p in paths]
    assert [h.path for h in packed.fresh] == [paths[7]]
    # The new stat replaced the old one: the old record is not found any more.
    assert cache.digests([FileStat.of(os.stat(paths[7]))], ALG) == [_digest(paths[7]).raw]
    assert len(_records(tmp_path / "stat.db")) == 40


def test_a_file_written_within_the_racy_window_is_not_recorded_unless_trusted(
    tmp_path: Path,
) -> None:
    (path,) = _files(tmp_path / "data", 1)
    cache = StatCache(tmp_path / "stat.db")
    stat = FileStat.of(os.stat(path))
    cache.record([(stat, _digest(path))])
    assert cache.digests([stat], ALG) == [None]
    cache.record([(stat, _digest(path))], trusted=True)
    assert cache.digests([stat], ALG) == [_digest(path).raw]
    # Another algorithm is another record.
    assert cache.digests([stat], Algorithm.MD5) == [None]


def test_records_of_one_block_from_two_processes_are_both_kept(tmp_path: Path) -> None:
    one, two = StatCache(tmp_path / "stat.db"), StatCache(tmp_path / "stat.db")
    base = 5 << BLOCK_BITS
    stats = [(1, base + i, 10, 20, 30) for i in range(6)]
    raws = [bytes([i]) * 16 for i in range(6)]
    one.record([(s, Digest(ALG, r)) for s, r in zip(stats[:3], raws[:3], strict=True)])
    two.record([(s, Digest(ALG, r)) for s, r in zip(stats[3:], raws[3:], strict=True)])
    # Each stat must match whole: another device, size or time is no match.
    others = [(2, base, 10, 20, 30), (1, base, 11, 20, 30), (1, base, 10, 20, 31)]
    assert one.digests([*stats, *others], ALG) == [*raws, None, None, None]


def test_device_and_inode_numbers_beyond_a_signed_64_bit_integer(tmp_path: Path) -> None:
    cache = StatCache(tmp_path / "stat.db")
    big = (2**64 - 1, 2**64 - 2, 1, -5, 7)  # a time before 1970 too
    raw = b"\x01" * 16
    cache.record([(big, Digest(ALG, raw))])
    assert StatCache(tmp_path / "stat.db").digests([big], ALG) == [raw]


def test_a_row_that_does_not_unpack_costs_a_re_hash_not_a_wrong_digest(tmp_path: Path) -> None:
    cache = StatCache(tmp_path / "stat.db")
    stat = (1, 2, 3, 4, 5)
    cache.record([(stat, Digest(ALG, b"\x02" * 16))])
    for damage in ("substr(digests, 2)", "substr(digests, 1, 8) || x'00'", "x'00' || digests"):
        with sqlite3.connect(tmp_path / "stat.db") as conn:
            conn.execute(f"UPDATE digest_blocks SET digests = {damage}")
        conn.close()
        assert StatCache(tmp_path / "stat.db").digests([stat], ALG) == [None]
        cache.record([(stat, Digest(ALG, b"\x02" * 16))])  # a damaged row is written anew
        assert cache.digests([stat], ALG) == [b"\x02" * 16]


def test_a_file_that_is_no_database_costs_a_re_hash(tmp_path: Path, hashed: list[str]) -> None:
    paths = _files(tmp_path / "data", 3)
    (tmp_path / "stat.db").write_bytes(b"not a database" * 100)
    cache = StatCache(tmp_path / "stat.db")
    assert cache.digests(stat_keys(paths), ALG) == [None] * 3
    cache.record([(FileStat.of(os.stat(paths[0])), _digest(paths[0]))], trusted=True)
    assert [h.digest for h in hash_files_cached(paths, ALG, cache)] == list(map(_digest, paths))
    assert hashed == paths


def test_a_file_of_the_previous_layout_keeps_its_copies_and_drops_its_digests(
    tmp_path: Path,
) -> None:
    path = tmp_path / "stat.db"
    copy = ("XXH128", b"\x03" * 16, "/somewhere/model.bin", 1, 2, 3, 4, 5)
    with sqlite3.connect(path) as conn:
        conn.execute(
            "CREATE TABLE file_digests (ino INTEGER, dev INTEGER, alg TEXT, size INTEGER,"
            " mtime INTEGER, ctime INTEGER, digest BLOB, PRIMARY KEY (ino, dev, alg))"
            " WITHOUT ROWID"
        )
        conn.execute("INSERT INTO file_digests VALUES (2, 1, 'XXH128', 3, 4, 5, ?)", [b"\0" * 16])
        conn.execute(
            "CREATE TABLE copies (alg TEXT, digest BLOB, path TEXT, dev INTEGER, ino INTEGER,"
            " size INTEGER, mtime INTEGER, ctime INTEGER, PRIMARY KEY (alg, digest, path))"
            " WITHOUT ROWID"
        )
        conn.execute("INSERT INTO copies VALUES (?,?,?,?,?,?,?,?)", copy)
    conn.close()

    cache = StatCache(path)
    assert cache.digests([(1, 2, 3, 4, 5)], ALG) == [None]
    cache.record([((1, 2, 3, 4, 5), Digest(ALG, b"\x04" * 16))])
    assert cache.digests([(1, 2, 3, 4, 5)], ALG) == [b"\x04" * 16]
    with sqlite3.connect(path) as conn:
        tables = {name for (name,) in conn.execute("SELECT name FROM sqlite_master")}
        copies = conn.execute("SELECT * FROM copies").fetchall()
    conn.close()
    assert "file_digests" not in tables
    assert copies == [copy]


def _records(path: Path) -> list[bytes]:
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT records FROM digest_blocks").fetchall()
    conn.close()
    packed = b"".join(records for (records,) in rows)
    return [packed[i : i + 40] for i in range(0, len(packed), 40)]


def test_full_blocks_are_matched_record_by_record_in_any_order(tmp_path: Path) -> None:
    cache = StatCache(tmp_path / "stat.db")
    # Two full blocks and part of a third, recorded in two calls (the second appends to
    # the rows of the first): more records a row than are cut at once.
    stats = [(9, (7 << BLOCK_BITS) + i, i, 10 * i, 20 * i) for i in range(2 * 1024 + 77)]
    raws = [i.to_bytes(4, "little") * 4 for i in range(len(stats))]
    records = [(s, Digest(ALG, r)) for s, r in zip(stats, raws, strict=True)]
    cache.record(records[::2])
    cache.record(records[1::2])
    order = list(range(len(stats)))[::-7] + list(range(len(stats)))[::7]
    asked = [stats[i] for i in order]
    # A stat differing from a record in any one field matches nothing.
    changed = [(s[0], s[1], s[2] + 1, s[3], s[4]) for s in stats[:3]]
    found = StatCache(tmp_path / "stat.db").digests([*asked, *changed], ALG)
    assert found == [raws[i] for i in order] + [None] * 3
