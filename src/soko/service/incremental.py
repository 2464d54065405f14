"""Incremental versions (W&B's ``Artifact(name, type, incremental=True)``).

An incremental request's manifest holds only what its draft added. It becomes the next
version of its collection holding the entries of the collection's latest committed version
(the *base*) with the added ones laid over them: a path in both takes the added entry. A
collection with no committed version takes the request as it is (a first version).

The base is resolved where the commit happens, never by the client: :func:`resolve_base`
reads it before the manifest is stored, and the committing transaction, holding the
collection's lock, checks with :func:`latest_id` that the base is still the latest
version; when another version was committed meanwhile, the caller builds again on the new
one. So two incremental logs racing each add to what the other committed, and neither
loses the other's entries (docs/decisions.md, "Incremental artifacts").

The base's blobs need no check: they are named by a committed version, which garbage
collection keeps, and the collection's lock keeps it the latest until the commit ends.
This module reads versions and manifests; it writes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, select

from soko.core.digests import Algorithm
from soko.core.manifest import Manifest
from soko.core.records import COMMITTED
from soko.metadata.schema import aliases, collections, versions
from soko.service.catalog import find_project
from soko.service.store import Store

ATTEMPTS = 20
"""How many times a commit builds on a new base when other versions keep landing first."""


@dataclass(frozen=True)
class Base:
    """The version an incremental commit builds on: its id and its manifest."""

    version_id: str
    manifest: Manifest


def latest_id(conn: Connection, collection_id: int) -> str | None:
    """The id of the version ``latest`` names in the collection (None when it has none)."""
    return conn.execute(
        select(aliases.c.version_id)
        .join(versions, versions.c.id == aliases.c.version_id)
        .where(
            aliases.c.collection_id == collection_id,
            aliases.c.alias == "latest",
            versions.c.state == COMMITTED,
        )
    ).scalar()


def resolve_base(
    store: Store, conn: Connection, *, entity: str, project: str, name: str
) -> Base | None:
    """The latest committed version of ``entity/project/name`` with its manifest; None when
    the collection does not exist or has no committed version."""
    project_id = find_project(conn, entity, project)
    if project_id is None:
        return None
    collection_id = conn.execute(
        select(collections.c.id).where(
            collections.c.project_id == project_id, collections.c.name == name
        )
    ).scalar()
    if collection_id is None:
        return None
    version_id = latest_id(conn, collection_id)
    if version_id is None:
        return None
    row = conn.execute(
        select(versions.c.manifest_blob, versions.c.algorithm).where(versions.c.id == version_id)
    ).one()
    return Base(version_id, store.load_manifest(row.manifest_blob, Algorithm.parse(row.algorithm)))


def overlay(base: Base | None, added: Manifest) -> Manifest:
    """*added* laid over the base's entries: the added entry wins where a path is in both.

    The version takes the added manifest's digest algorithm; the base's entries keep their
    digests, each naming its own algorithm (``extra.alg``), as W&B's entries do.
    """
    if base is None:
        return added
    merged: dict[str, Any] = {entry.path: entry for entry in base.manifest}
    merged.update((entry.path, entry) for entry in added)
    algorithm = added.algorithm if len(added) else base.manifest.algorithm
    return Manifest.of(merged.values(), algorithm, added.storage_policy_config)


def base_id(base: Base | None) -> str | None:
    return base.version_id if base is not None else None
