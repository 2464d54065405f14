"""The packed set of digests a log still has to store behaves as a set of Digest."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from soko.core.digests import Algorithm, Digest
from soko.sdk.missing import MissingDigests, ask_missing


def digests(count: int, algorithm: Algorithm = Algorithm.XXH128, salt: str = "") -> list[Digest]:
    return [Digest(algorithm, hashlib.md5(f"{salt}{i}".encode()).digest()) for i in range(count)]


def test_holds_what_a_set_holds_through_adds_discards_and_growth() -> None:
    many = digests(5000)
    packed = MissingDigests(many)
    assert len(packed) == 5000
    assert set(packed) == set(many)
    assert all(d in packed for d in many)
    assert not any(d in packed for d in digests(500, salt="other"))
    packed.add(many[0])  # already there
    assert len(packed) == 5000
    for d in many[:4000]:
        packed.discard(d)
    packed.discard(many[0])  # gone already
    assert len(packed) == 1000
    assert set(packed) == set(many[4000:])
    # Those placed after a taken-out digest are still found, before and after compacting.
    assert all(d in packed for d in many[4000:])
    packed.compact()
    assert set(packed) == set(many[4000:])
    assert not any(d in packed for d in many[:4000])
    packed.add(many[0])
    assert many[0] in packed and len(packed) == 1001


def test_algorithms_are_apart_and_other_objects_are_not_members() -> None:
    xxh = digests(10)
    md5 = [Digest(Algorithm.MD5, d.raw) for d in xxh]
    packed = MissingDigests(xxh)
    assert not any(d in packed for d in md5)
    packed |= md5
    assert len(packed) == 20 and set(packed) == set(xxh) | set(md5)
    assert xxh[0].raw not in packed
    assert "x" not in packed


def test_a_copy_is_independent() -> None:
    many = digests(100)
    packed = MissingDigests(many)
    copied = packed.copy()
    for d in many:
        copied.discard(d)
    assert not copied and len(packed) == 100 and set(packed) == set(many)


def test_compacting_everything_away_leaves_an_empty_set() -> None:
    many = digests(50)
    packed = MissingDigests(many)
    for d in many:
        packed.discard(d)
    packed.compact()
    assert not packed and list(packed) == []


class SlicedBackend:
    """A backend lacking the even-numbered digests; records the size of each question."""

    def __init__(self, lacking: set[Digest]) -> None:
        self.lacking = lacking
        self.asked: list[int] = []

    def missing_blobs(
        self, digests: Iterable[Digest], *, entity: str, project: str, name: str | None = None
    ) -> set[Digest]:
        part = list(digests)
        self.asked.append(len(part))
        return {d for d in part if d in self.lacking}


def test_ask_missing_asks_a_slice_at_a_time_and_gathers_every_answer() -> None:
    many = digests(70_000)
    backend = SlicedBackend(set(many[::2]))
    found = ask_missing(
        backend,  # type: ignore[arg-type]  # the one method asked for
        many,
        entity="e",
        project="p",
        name="n",
    )
    assert set(found) == set(many[::2])
    assert sum(backend.asked) == 70_000 and max(backend.asked) < 70_000
