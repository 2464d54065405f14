"""The stat cache's copies: where downloads placed a large blob's verified bytes."""

from __future__ import annotations

import os
from pathlib import Path

from soko.client.statcache import COPY_MIN, StatCache
from soko.core.digests import Algorithm, Digest


def _file(path: Path, data: bytes) -> tuple[str, Digest]:
    path.write_bytes(data)
    return str(path), Digest.of_bytes(data, Algorithm.XXH128)


def test_a_remembered_copy_is_found_while_its_stat_is_unchanged(tmp_path: Path):
    cache = StatCache(tmp_path / "stat.db")
    first = _file(tmp_path / "a.bin", os.urandom(COPY_MIN))
    second = (str(tmp_path / "b.bin"), first[1])
    Path(second[0]).write_bytes(Path(first[0]).read_bytes())
    cache.remember_copies([first, second])

    assert sorted(cache.copies([first[1]])[first[1]]) == sorted([first[0], second[0]])
    # Another process sees them: the records are on disk.
    assert len(StatCache(tmp_path / "stat.db").copies([first[1]])[first[1]]) == 2


def test_an_edited_or_removed_copy_is_forgotten(tmp_path: Path):
    cache = StatCache(tmp_path / "stat.db")
    data = os.urandom(COPY_MIN + 10)
    edited = _file(tmp_path / "edited.bin", data)
    removed = (str(tmp_path / "removed.bin"), edited[1])
    kept = (str(tmp_path / "kept.bin"), edited[1])
    for path, _ in (removed, kept):
        Path(path).write_bytes(data)
    cache.remember_copies([edited, removed, kept])

    with open(edited[0], "r+b") as f:  # same size, other bytes
        f.write(b"X")
    os.unlink(removed[0])
    assert cache.copies([edited[1]]) == {edited[1]: [kept[0]]}
    # Forgotten, not just skipped: restoring the old bytes does not bring a record back.
    Path(removed[0]).write_bytes(data)
    assert cache.copies([edited[1]]) == {edited[1]: [kept[0]]}


def test_small_files_and_missing_files_are_not_remembered(tmp_path: Path):
    cache = StatCache(tmp_path / "stat.db")
    small = _file(tmp_path / "small.bin", os.urandom(COPY_MIN - 1))
    gone = (str(tmp_path / "never-written.bin"), small[1])
    cache.remember_copies([small, gone])
    assert cache.copies([small[1]]) == {}


def test_forget_copy_and_other_digests(tmp_path: Path):
    cache = StatCache(tmp_path / "stat.db")
    one = _file(tmp_path / "one.bin", os.urandom(COPY_MIN))
    two = _file(tmp_path / "two.bin", os.urandom(COPY_MIN))
    cache.remember_copies([one, two])
    assert cache.copies([one[1]]) == {one[1]: [one[0]]}
    # The same raw bytes under another algorithm name no copy.
    assert cache.copies([Digest(Algorithm.MD5, one[1].raw)]) == {}
    cache.forget_copy(one[1], one[0])
    assert cache.copies([one[1], two[1]]) == {two[1]: [two[0]]}


def test_an_unusable_database_only_costs_the_copies(tmp_path: Path):
    (tmp_path / "stat.db").mkdir()  # a folder where the database should be
    cache = StatCache(tmp_path / "stat.db")
    one = _file(tmp_path / "one.bin", os.urandom(COPY_MIN))
    cache.remember_copies([one])
    assert cache.copies([one[1]]) == {}
    cache.forget_copy(one[1], one[0])  # no error either
