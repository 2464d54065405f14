"""A store made before links were versions (schema 0003, links in their own table) upgrades
in place: each link becomes a member of its registry collection with the same ``vN``, the
registry's aliases follow, and numbering goes on after the highest link."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine, create_engine, text

from soko.metadata.engine import (
    HEAD_REVISION,
    current_revision,
    open_engine,
    sqlite_url,
    upgrade,
)
from soko.service import links, versions
from soko.service.store import Store
from soko.storage.memory import MemoryBlobStore

_STAMP = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)


def _store_before_links_were_versions(path: Path) -> Engine:
    engine = create_engine(sqlite_url(path))
    upgrade(engine, "0003")
    rows = [
        "INSERT INTO entities (id, name) VALUES (1, 'local')",
        "INSERT INTO projects (id, entity_id, name, created_at) VALUES (1, 1, 'p', :t)",
        "INSERT INTO projects (id, entity_id, name, created_at) "
        "VALUES (2, 1, 'wandb-registry-model', :t)",
        "INSERT INTO collections (id, project_id, name, type, kind, next_index, created_at) "
        "VALUES (1, 1, 'clf', 'model', 'sequence', 2, :t)",
        "INSERT INTO collections (id, project_id, name, type, kind, next_index, created_at) "
        "VALUES (2, 2, 'prod', 'model', 'registry', 0, :t)",
    ]
    for index in (0, 1):
        rows.append(
            "INSERT INTO versions (id, collection_id, version_index, state, digest, algorithm, "
            "manifest_blob, metadata, size, file_count, created_at, committed_at, updated_at) "
            f"VALUES ('source-{index}', 1, {index}, 'COMMITTED', 'd{index}', 'md5', "
            f"'xxh128:{index:032x}', '{{}}', 5, 1, :t, :t, :t)"
        )
    rows += [
        # Linked v1 first, then v0: link indexes 0 and 1.
        "INSERT INTO links (collection_id, version_id, link_index, created_at) "
        "VALUES (2, 'source-1', 0, :t)",
        "INSERT INTO links (collection_id, version_id, link_index, created_at) "
        "VALUES (2, 'source-0', 1, :t)",
        "INSERT INTO aliases (collection_id, alias, version_id) VALUES (1, 'latest', 'source-1')",
        "INSERT INTO aliases (collection_id, alias, version_id) VALUES (2, 'staging', 'source-1')",
        "INSERT INTO aliases (collection_id, alias, version_id) VALUES (2, 'latest', 'source-0')",
    ]
    with engine.begin() as conn:
        for row in rows:
            conn.execute(text(row), {"t": _STAMP})
    return engine


def test_links_of_an_older_store_become_members_of_their_collection(tmp_path: Path) -> None:
    _store_before_links_were_versions(tmp_path / "soko.db").dispose()

    # Opened as soko opens a store (foreign keys on), which upgrades it.
    engine = open_engine(sqlite_url(tmp_path / "soko.db"))

    assert current_revision(engine) == HEAD_REVISION
    store = Store(engine, MemoryBlobStore())
    staging = versions.resolve(store, "local", "wandb-registry-model", "prod", "staging")
    assert (staging.version, staging.source_id, staging.aliases) == ("v0", "source-1", ["staging"])
    latest = versions.resolve(store, "local", "wandb-registry-model", "prod", "latest")
    assert (latest.version, latest.source_id) == ("v1", "source-0")
    assert latest.manifest_blob == f"xxh128:{0:032x}"
    source = versions.resolve(store, "local", "p", "clf", "latest")
    assert (source.id, source.aliases) == ("source-1", ["latest"])
    listed = versions.list_versions(store, "local", "wandb-registry-model", "prod")
    assert [(r.version, r.source_id) for r in listed] == [("v0", "source-1"), ("v1", "source-0")]

    # Linking goes on after the highest link, and the same version is still one link.
    assert (
        links.link_version(
            store, "source-1", entity="local", project="wandb-registry-model", registry="prod"
        ).version
        == "v0"
    )
    other = links.link_version(
        store, "source-0", entity="local", project="wandb-registry-model", registry="fresh"
    )
    assert other.version == "v0"


def test_the_upgrade_is_undone_by_the_downgrade(tmp_path: Path) -> None:
    from alembic import command
    from alembic.config import Config

    from soko.metadata.engine import MIGRATIONS_DIR

    engine = _store_before_links_were_versions(tmp_path / "soko.db")
    upgrade(engine)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    with engine.connect() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0003")
        conn.commit()
    with engine.connect() as conn:
        restored = conn.execute(
            text("SELECT version_id, link_index FROM links ORDER BY link_index")
        ).all()
        aliases = conn.execute(
            text("SELECT alias, version_id FROM aliases WHERE collection_id = 2 ORDER BY alias")
        ).all()
        count = conn.execute(text("SELECT count(*) FROM versions")).scalar_one()
    assert [tuple(r) for r in restored] == [("source-1", 0), ("source-0", 1)]
    assert [tuple(a) for a in aliases] == [("latest", "source-0"), ("staging", "source-1")]
    assert count == 2
