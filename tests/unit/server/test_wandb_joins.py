"""Joins in the background: a request waits a while, then is told to ask again; a second
request for the same file waits for the same join; an error reaches the request."""

from __future__ import annotations

import threading

import pytest

from soko.errors import DigestMismatchError
from soko.server.wandb.joins import Joins


def test_a_long_join_is_asked_again_and_runs_once() -> None:
    joins = Joins()
    release = threading.Event()
    started: list[int] = []

    def job() -> int:
        started.append(1)
        assert release.wait(30)
        return 42

    assert joins.run("e/p/md5:aa", job, wait=0.01) is None  # still running
    assert joins.run("e/p/md5:aa", job, wait=0.01) is None  # the same join, not another
    release.set()
    assert joins.run("e/p/md5:aa", job, wait=30) == 42
    assert started == [1]


def test_a_join_that_fails_raises_and_is_forgotten() -> None:
    joins = Joins()
    calls: list[int] = []

    def job() -> int:
        calls.append(1)
        if len(calls) == 1:
            raise DigestMismatchError("the parts do not hash to the file's digest")
        return 7

    with pytest.raises(DigestMismatchError):
        joins.run("k", job, wait=30)
    assert joins.run("k", job, wait=30) == 7  # a new attempt, not the old error
    assert calls == [1, 1]
