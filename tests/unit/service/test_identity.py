"""A database and a blob store carry one id; a pair whose ids differ is refused."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import delete

from soko.errors import StoreError
from soko.metadata.engine import sqlite_url
from soko.metadata.schema import store_identity
from soko.service import identity as pair
from soko.service.store import Store
from soko.storage import identity
from soko.storage.local import LocalBlobStore
from soko.storage.memory import MemoryBlobStore


def _open(tmp_path: Path, db: str, store: str) -> Store:
    return Store.open(sqlite_url(tmp_path / f"{db}.db"), LocalBlobStore(tmp_path / store))


def test_a_new_pair_gets_one_id_in_both_and_opens_again(tmp_path: Path) -> None:
    first = _open(tmp_path, "a", "blobs")
    store_id = pair.database_id(first.engine)
    assert store_id is not None
    assert identity.read_id(first.blobs) == store_id
    assert (tmp_path / "blobs" / "store_id").read_text().strip() == store_id
    again = _open(tmp_path, "a", "blobs")
    assert pair.database_id(again.engine) == store_id


def test_a_new_database_on_a_used_store_is_refused_in_one_line(tmp_path: Path) -> None:
    _open(tmp_path, "a", "blobs")
    with pytest.raises(StoreError) as refused:
        _open(tmp_path, "b", "blobs")
    message = str(refused.value)
    assert "\n" not in message
    assert "belongs to another metadata database" in message
    assert "--store" in message
    # Nothing was written into the store: it still belongs to its database.
    assert identity.read_id(LocalBlobStore(tmp_path / "blobs")) == pair.database_id(
        _open(tmp_path, "a", "blobs").engine
    )


def test_two_pairs_crossed_are_refused(tmp_path: Path) -> None:
    _open(tmp_path, "a", "blobs-a")
    _open(tmp_path, "b", "blobs-b")
    with pytest.raises(StoreError, match="belongs to another metadata database"):
        _open(tmp_path, "a", "blobs-b")


def test_a_store_made_before_ids_is_adopted_by_its_database(tmp_path: Path) -> None:
    store = _open(tmp_path, "a", "blobs")
    (tmp_path / "blobs" / "store_id").unlink()
    again = _open(tmp_path, "a", "blobs")
    assert identity.read_id(again.blobs) == pair.database_id(store.engine)


def test_a_pair_made_before_ids_gets_one(tmp_path: Path) -> None:
    store = _open(tmp_path, "a", "blobs")
    (tmp_path / "blobs" / "store_id").unlink()
    with store.engine.begin() as conn:
        conn.execute(delete(store_identity))
    again = _open(tmp_path, "a", "blobs")
    store_id = pair.database_id(again.engine)
    assert store_id is not None
    assert identity.read_id(again.blobs) == store_id


def test_a_database_made_before_ids_does_not_adopt_a_claimed_store(tmp_path: Path) -> None:
    store = _open(tmp_path, "a", "blobs")
    with store.engine.begin() as conn:
        conn.execute(delete(store_identity))
    with pytest.raises(StoreError, match="this database has none"):
        _open(tmp_path, "a", "blobs")


def test_a_memory_store_keeps_its_id(tmp_path: Path) -> None:
    blobs = MemoryBlobStore()
    Store.open(sqlite_url(tmp_path / "a.db"), blobs)
    with pytest.raises(StoreError):
        Store.open(sqlite_url(tmp_path / "b.db"), blobs)
