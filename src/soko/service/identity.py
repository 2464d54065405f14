"""A database and a blob store that belong together: checked each time a store is opened.

Garbage collection deletes the blobs that no version *of its database* names. A blob store
that two databases share (a server started again with another ``--db`` and the default
``--store``, two deployments given one bucket) would lose the blobs of the other one. So
the pair carries one id, written into both when they are first opened together, and
:func:`bind` refuses a pair whose ids differ, with one line saying what to do.

The rules, for each open (the database decides, the store follows):

- both have the same id: fine;
- neither has one (a new pair, or a pair made before soko wrote ids): a new id is written
  into the database, then into the store;
- the database has one and the store none (a store made before soko wrote ids, or the
  store's id lost): the store gets the database's id, since nothing says it is another's;
- the store has one and the database another one, or none: refused. The store belongs to
  another database (a new database pointed at a used store is exactly the mistake above;
  a database restored from its backup has the id of its store).

Concurrent first opens agree: the database's one row is inserted by one of them, and the
others read it back; every process then writes the same id into the store.
"""

from __future__ import annotations

import uuid

from sqlalchemy import Engine, insert, select
from sqlalchemy.exc import IntegrityError

from soko.errors import StoreError
from soko.metadata.schema import store_identity
from soko.service.catalog import now
from soko.storage import identity
from soko.storage.base import BlobStore


def database_id(engine: Engine) -> str | None:
    with engine.connect() as conn:
        found = conn.execute(select(store_identity.c.store_id)).scalar()
    return str(found) if found is not None else None


def _claim_database(engine: Engine) -> str:
    """The database's id, made now when it has none (one row; racing inserts agree)."""
    found = database_id(engine)
    if found is not None:
        return found
    try:
        with engine.begin() as conn:
            conn.execute(
                insert(store_identity).values(
                    singleton=1, store_id=str(uuid.uuid4()), created_at=now()
                )
            )
    except IntegrityError:
        pass  # another process inserted it first: theirs is the id
    found = database_id(engine)
    assert found is not None
    return found


def bind(engine: Engine, blobs: BlobStore, *, store_name: str) -> str | None:
    """Check that *blobs* belongs to the database of *engine*, writing the id where it is
    missing (see the module docstring); the pair's id, or None for a store that cannot keep
    one. StoreError, one line, when the store belongs to another database."""
    if not identity.supports_id(blobs):
        return None
    in_store = identity.read_id(blobs)
    in_database = database_id(engine)
    if in_store is not None and in_store != in_database:
        whose = (
            f"this database has id {in_database}"
            if in_database is not None
            else "this database has none, so it is not the one the store was made with"
        )
        raise StoreError(
            f"The blob store {store_name} belongs to another metadata database (store id "
            f"{in_store}; {whose}): give each database its own store (--store), or point "
            "--db at the database this store was used with."
        )
    pair_id = _claim_database(engine)
    if in_store is None:
        identity.write_id(blobs, pair_id)
    return pair_id
