"""The relational schema of a soko store (SQLAlchemy Core), shared by SQLite and PostgreSQL.

The Alembic migrations under ``migrations/`` create exactly these tables; a test compares the
two so that they cannot drift apart.

Invariants the constraints enforce:
- (collection, version_index) is unique: two racing commits cannot get the same ``vN``;
- (collection, alias) is unique: an alias names one version of a collection;
- (project, collection name) is unique: a name has one type in a project;
- (registry collection, source version) is unique: a version is linked once into a collection.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
)

metadata = MetaData()

ID = String(36)

# An organisation holds entities, and its registries live in the entity of its own name
# (migration 0005). An entity with no organisation belongs to the default one.
organisations = Table(
    "organisations",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(128), nullable=False, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

entities = Table(
    "entities",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(128), nullable=False, unique=True),
    # No foreign key: SQLite stores gain the column in place (migration 0005).
    Column("organisation_id", Integer, nullable=True),
)

projects = Table(
    "projects",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("entity_id", Integer, ForeignKey("entities.id"), nullable=False),
    Column("name", String(128), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("entity_id", "name", name="uq_projects_entity_name"),
)

collections = Table(
    "collections",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("project_id", Integer, ForeignKey("projects.id"), nullable=False),
    Column("name", String(128), nullable=False),
    Column("type", String(128), nullable=False),
    # "sequence" holds versions; "registry" holds links: versions whose content is another
    # version's (``versions.source_version_id``).
    Column("kind", String(16), nullable=False, server_default="sequence"),
    Column("description", Text, nullable=True),
    # The next vN is taken from this counter inside the commit transaction, so numbers are
    # never reused even after deletions.
    Column("next_index", Integer, nullable=False, server_default="0"),
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("project_id", "name", name="uq_collections_project_name"),
)

runs = Table(
    "runs",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("project_id", Integer, ForeignKey("projects.id"), nullable=False),
    Column("name", String(256), nullable=True),
    Column("job_type", String(128), nullable=True),
    Column("group_name", String(256), nullable=True),
    Column("config", JSON, nullable=True),
    Column("state", String(16), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True), nullable=True),
    # JSON text (NaN and infinities kept, which database JSON refuses): see core/runlog.py.
    Column("summary", Text, nullable=True),
)

# The newest rows of each run's history (core.runlog.HISTORY_MAX_ROWS), one per step.
run_history = Table(
    "run_history",
    metadata,
    Column("run_id", String(64), ForeignKey("runs.id"), primary_key=True),
    Column("step", BigInteger, primary_key=True, autoincrement=False),
    Column("row", Text, nullable=False),
)

versions = Table(
    "versions",
    metadata,
    Column("id", ID, primary_key=True),
    Column("collection_id", Integer, ForeignKey("collections.id"), nullable=False),
    Column("version_index", Integer, nullable=True),
    Column("state", String(16), nullable=False),
    Column("digest", String(64), nullable=False),
    Column("algorithm", String(16), nullable=False),
    # Key of the manifest blob ("<alg>:<hex>"); set before the version becomes COMMITTED.
    Column("manifest_blob", String(80), nullable=True),
    Column("metadata", JSON, nullable=True),
    Column("description", Text, nullable=True),
    Column("size", BigInteger, nullable=False, server_default="0"),
    Column("file_count", Integer, nullable=False, server_default="0"),
    Column("ttl_seconds", BigInteger, nullable=True),
    Column("distributed_id", String(256), nullable=True),
    Column("created_by_run", String(64), ForeignKey("runs.id"), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("committed_at", DateTime(timezone=True), nullable=True),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("deleted_at", DateTime(timezone=True), nullable=True),
    # Set on a link (migration 0005): the version it links, whose manifest it shares. A link
    # is a member of its registry collection, with its own vN, aliases and tags. No foreign
    # key, so that SQLite stores gain the column in place: links are removed before their
    # source is (service.links.unlink).
    Column("source_version_id", ID, nullable=True),
    UniqueConstraint("collection_id", "version_index", name="uq_versions_collection_index"),
)
Index("ix_versions_source", versions.c.source_version_id)
Index(
    "uq_versions_collection_source",
    versions.c.collection_id,
    versions.c.source_version_id,
    unique=True,
)
Index("ix_versions_collection_digest", versions.c.collection_id, versions.c.digest)
Index("ix_versions_pending", versions.c.collection_id, versions.c.distributed_id)

aliases = Table(
    "aliases",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("collection_id", Integer, ForeignKey("collections.id"), nullable=False),
    Column("alias", String(128), nullable=False),
    Column("version_id", ID, ForeignKey("versions.id"), nullable=False),
    UniqueConstraint("collection_id", "alias", name="uq_aliases_collection_alias"),
)
Index("ix_aliases_version", aliases.c.version_id)

tags = Table(
    "tags",
    metadata,
    Column("version_id", ID, ForeignKey("versions.id"), primary_key=True),
    Column("tag", String(256), primary_key=True),
)

lineage = Table(
    "lineage",
    metadata,
    Column("run_id", String(64), ForeignKey("runs.id"), primary_key=True),
    Column("version_id", ID, ForeignKey("versions.id"), primary_key=True),
    # "used" (input of the run) or "logged" (output of the run).
    Column("direction", String(8), primary_key=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
)
Index("ix_lineage_version", lineage.c.version_id, lineage.c.direction)

collection_tags = Table(
    "collection_tags",
    metadata,
    Column("collection_id", Integer, ForeignKey("collections.id"), primary_key=True),
    Column("tag", String(256), primary_key=True),
)

# A registry of an organisation (migration 0005): its links live in the project
# ``wandb-registry-<name>`` of the organisation's entity. ``artifact_types`` empty: any type.
registries = Table(
    "registries",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("organisation", String(128), nullable=False),
    Column("name", String(128), nullable=False),
    Column("description", Text, nullable=True),
    Column("visibility", String(16), nullable=False),
    Column("artifact_types", JSON, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("organisation", "name", name="uq_registries_organisation_name"),
)

# Entries of a distributed version while it is pending; merged into its manifest at finish.
pending_entries = Table(
    "pending_entries",
    metadata,
    Column("version_id", ID, ForeignKey("versions.id"), primary_key=True),
    Column("path", String(1024), primary_key=True),
    Column("entry", JSON, nullable=False),
    Column("writer", String(64), nullable=True),
)

# The blobs a project has proven it holds (migration 0003): uploaded for the project by one
# of its writers, or named by a version its committer could read. A commit may name only
# these, so that a writer cannot reach another project's bytes by naming their digest.
# ``size`` is the real size the server measured, against which manifests are checked.
project_blobs = Table(
    "project_blobs",
    metadata,
    Column("project_id", Integer, ForeignKey("projects.id"), primary_key=True),
    Column("digest", String(48), primary_key=True),
    Column("size", BigInteger, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

# --- the server's users, API keys and project roles (migration 0002) -------------------

users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(128), nullable=False, unique=True),
    # A server admin may do everything, on every project, and manage users.
    Column("is_admin", Boolean, nullable=False, server_default=false()),
    Column("created_at", DateTime(timezone=True), nullable=False),
    # A disabled user's keys are refused; its roles and history stay (migration 0006).
    Column("disabled_at", DateTime(timezone=True), nullable=True),
)

api_keys = Table(
    "api_keys",
    metadata,
    # The public half of a key, shown in listings; never enough to authenticate.
    Column("id", String(32), primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id"), nullable=False),
    # SHA-256 (hex) of the whole key: keys are 256 random bits, so a fast hash is enough and
    # a leaked table gives no usable key.
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
    # "env" for a key the server took from SOKO_ADMIN_KEY: the next different one revokes it.
    Column("origin", String(16), nullable=True),
    # Refused from then on; null: never expires (migration 0006).
    Column("expires_at", DateTime(timezone=True), nullable=True),
)

# A role per (user, entity, project); project "*" covers every project of the entity.
# Names, not foreign keys: a role may be granted before its project's first version.
project_roles = Table(
    "project_roles",
    metadata,
    Column("user_id", Integer, ForeignKey("users.id"), primary_key=True),
    Column("entity", String(128), primary_key=True),
    Column("project", String(128), primary_key=True),
    Column("role", String(16), nullable=False),
)

# The id written into both the database and its blob store when the pair is first opened
# (migration 0006): a server or gc refuses a pair whose ids differ. One row, ``singleton``
# 1, so that two first opens racing to insert it cannot both succeed.
store_identity = Table(
    "store_identity",
    metadata,
    Column("singleton", Integer, primary_key=True, autoincrement=False),
    Column("store_id", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

# --- registry automations (migration 0007) ----------------------------------------------

# A webhook called on an event of a project (a registry's project, for a registry), or of one
# collection of it. ``secret`` signs each body (HMAC-SHA256), so it is kept as given.
automations = Table(
    "automations",
    metadata,
    Column("id", ID, primary_key=True),
    Column("entity", String(128), nullable=False),
    Column("project", String(128), nullable=False),
    Column("collection", String(128), nullable=True),
    Column("event", String(32), nullable=False),
    Column("url", Text, nullable=False),
    Column("secret", String(256), nullable=False),
    Column("enabled", Boolean, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)
Index("ix_automations_scope", automations.c.entity, automations.c.project, automations.c.event)

# The outbox: a row per (automation, event), written in the transaction that made the event,
# then sent (and retried) by a delivery worker; the last attempt's outcome is kept on it.
deliveries = Table(
    "deliveries",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("automation_id", ID, ForeignKey("automations.id"), nullable=False),
    Column("event_id", ID, nullable=False),
    Column("payload", Text, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", DateTime(timezone=True), nullable=False),
    # pending, delivered or failed (the retry window passed)
    Column("status", String(16), nullable=False),
    Column("last_status_code", Integer, nullable=True),
    Column("last_latency_ms", Float, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("automation_id", "event_id", name="uq_deliveries_automation_event"),
)
Index("ix_deliveries_due", deliveries.c.status, deliveries.c.next_attempt_at)

# --- manifest indexes (migration 0008) --------------------------------------------------

# The index of a stored manifest (soko.core.manifest_index: its slices and folders, zlib'd
# JSON), keyed by the manifest blob, so that versions of the same content share one.
# Derived data: written at commit for large manifests, built on first need otherwise (and
# for versions committed before the table existed); deleting a row loses nothing.
manifest_indexes = Table(
    "manifest_indexes",
    metadata,
    Column("manifest_blob", String(80), primary_key=True),
    Column("data", LargeBinary, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)
