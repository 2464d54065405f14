"""Organisations and their registries.

An organisation holds entities; the embedded store, and a server until its admin says
otherwise, has one, :data:`DEFAULT_ORGANISATION`. A registry ``R`` of organisation ``O``
keeps its collections of links in the project ``wandb-registry-R`` of the entity ``O``, so a
registry path ``wandb-registry-R/coll`` names the same collection from every entity of the
organisation (:func:`home_entity`). The registries ``model`` and ``dataset`` exist in every
organisation, as in W&B; others are made with :func:`create_registry`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, Row, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from soko.core.names import REGISTRY_PREFIX as REGISTRY_PREFIX
from soko.core.names import registry_name as registry_name
from soko.core.names import (
    validate_description,
    validate_name,
    validate_project,
    validate_type,
)
from soko.core.records import RegistryRecord, as_utc
from soko.errors import ConflictError, NotFoundError, ValidationError
from soko.metadata.schema import (
    aliases,
    collection_tags,
    collections,
    entities,
    lineage,
    organisations,
    projects,
    registries,
    tags,
    versions,
)
from soko.service.catalog import find_project, now
from soko.service.store import Store

DEFAULT_ORGANISATION = "local"
CORE_REGISTRIES = ("model", "dataset")
VISIBILITIES = ("organization", "restricted")

_UNSET: Any = object()


def organisation_of(conn: Connection, entity: str) -> str:
    """The organisation *entity* names (an organisation's name), or the one holding it."""
    validate_project(entity)
    if entity == DEFAULT_ORGANISATION or _organisation_id(conn, entity) is not None:
        return entity
    found = conn.execute(
        select(organisations.c.name)
        .join(entities, entities.c.organisation_id == organisations.c.id)
        .where(entities.c.name == entity)
    ).scalar()
    return found or DEFAULT_ORGANISATION


def memberships(
    conn: Connection, entity_names: Iterable[str]
) -> tuple[frozenset[str], frozenset[tuple[str, str]]]:
    """The organisations holding *entity_names* (an organisation's own entity counts), and
    ``(organisation, project)`` of their ``restricted`` registries: who may read what on a
    server, where a role on an entity makes its holder a member of its organisation."""
    names = set(entity_names)
    if not names:
        return frozenset(), frozenset()
    own = set(
        conn.execute(select(organisations.c.name).where(organisations.c.name.in_(names))).scalars()
    )
    held = {
        row.entity: row.organisation
        for row in conn.execute(
            select(entities.c.name.label("entity"), organisations.c.name.label("organisation"))
            .join(organisations, organisations.c.id == entities.c.organisation_id)
            .where(entities.c.name.in_(names - own))
        )
    }
    found = frozenset(
        name
        if name in own or name == DEFAULT_ORGANISATION
        else held.get(name, DEFAULT_ORGANISATION)
        for name in names
    )
    restricted = frozenset(
        (row.organisation, REGISTRY_PREFIX + row.name)
        for row in conn.execute(
            select(registries.c.organisation, registries.c.name).where(
                registries.c.organisation.in_(found), registries.c.visibility == "restricted"
            )
        )
    )
    return found, restricted


def _organisation_id(conn: Connection, name: str) -> int | None:
    found = conn.execute(select(organisations.c.id).where(organisations.c.name == name)).scalar()
    return None if found is None else int(found)


def organisation_for(store: Store, entity: str) -> str:
    """The organisation holding *entity* (see :func:`organisation_of`)."""
    with store.engine.connect() as conn:
        return organisation_of(conn, entity)


def home_entity(store: Store, entity: str, project: str) -> str:
    """Where ``entity/project`` lives: for a registry project, its organisation's entity;
    else *entity* itself."""
    if registry_name(project) is None:
        return entity
    with store.engine.connect() as conn:
        return organisation_of(conn, entity)


def registry_for_link(
    conn: Connection, *, entity: str, project: str, type_name: str
) -> RegistryRecord | None:
    """The registry a link into ``entity/project`` goes to (None for a project that is no
    registry's), after checking that it accepts *type_name*. A registry that does not exist
    is made by its first link, with W&B's defaults (any type, visible to the organisation):
    W&B makes it in its UI first, which a store without one cannot ask for."""
    name = registry_name(project)
    if name is None:
        return None
    record = _record(_found_or_made(conn, entity, name))
    if record.artifact_types and type_name not in record.artifact_types:
        raise ValidationError(
            f"Registry {name!r} accepts artifacts of type {record.artifact_types}, not "
            f"{type_name!r}."
        )
    return record


def _find(conn: Connection, organisation: str, name: str) -> Row[Any] | None:
    return conn.execute(
        select(registries).where(
            registries.c.organisation == organisation, registries.c.name == name
        )
    ).first()


def _found_or_made(conn: Connection, organisation: str, name: str) -> Row[Any]:
    """The registry, made with W&B's defaults if it does not exist. A savepoint, so that
    losing a race with another maker does not abort the caller's transaction: the row the
    other inserted is read back."""
    row = _find(conn, organisation, name)
    if row is not None:
        return row
    try:
        with conn.begin_nested():
            _insert(
                conn,
                organisation=organisation,
                name=name,
                visibility="organization",
                description=None,
                artifact_types=[],
            )
    except IntegrityError:
        pass
    made = _find(conn, organisation, name)
    assert made is not None
    return made


def _record(row: Row[Any]) -> RegistryRecord:
    return RegistryRecord(
        organisation=row.organisation,
        name=row.name,
        description=row.description,
        visibility=row.visibility,
        artifact_types=list(row.artifact_types or []),
        created_at=as_utc(row.created_at),
        updated_at=as_utc(row.updated_at),
    )


def _insert(conn: Connection, *, organisation: str, name: str, **fields: Any) -> None:
    stamp = now()
    conn.execute(
        insert(registries).values(
            organisation=organisation, name=name, created_at=stamp, updated_at=stamp, **fields
        )
    )


def _validate_registry_name(name: str) -> str:
    validate_name(name)
    validate_project(REGISTRY_PREFIX + name)
    return name


def _validate_visibility(visibility: str) -> str:
    if visibility not in VISIBILITIES:
        raise ValidationError(
            f"A registry's visibility is one of {list(VISIBILITIES)}, not {visibility!r}."
        )
    return visibility


def _validate_types(artifact_types: Sequence[str] | None) -> list[str]:
    if isinstance(artifact_types, str):
        raise ValidationError("artifact_types is a list of type names, not one string.")
    return sorted({validate_type(t) for t in artifact_types or ()})


def create_registry(
    store: Store,
    name: str,
    *,
    entity: str,
    organisation: str | None = None,
    visibility: str = "organization",
    description: str | None = None,
    artifact_types: Sequence[str] | None = None,
) -> RegistryRecord:
    """Make registry *name* in *organisation* (default: the one holding *entity*);
    ConflictError when it exists."""
    _validate_registry_name(name)
    _validate_visibility(visibility)
    description = validate_description(description)
    types = _validate_types(artifact_types)
    with store.engine.begin() as conn:
        org = _organisation(conn, entity, organisation)
        if _find(conn, org, name) is not None:
            raise ConflictError(f"Registry {name!r} already exists in organisation {org!r}.")
        try:
            with conn.begin_nested():
                _insert(
                    conn,
                    organisation=org,
                    name=name,
                    visibility=visibility,
                    description=description,
                    artifact_types=types,
                )
        except IntegrityError:
            raise ConflictError(
                f"Registry {name!r} already exists in organisation {org!r}."
            ) from None
        return _record(_existing(conn, org, name))


def resolve_organisation(store: Store, *, entity: str, organisation: str | None) -> str:
    """*organisation* if it exists, else the one holding *entity*."""
    with store.engine.connect() as conn:
        return _organisation(conn, entity, organisation)


def _organisation(conn: Connection, entity: str, organisation: str | None) -> str:
    if organisation is None:
        return organisation_of(conn, entity)
    validate_project(organisation)
    if organisation != DEFAULT_ORGANISATION and _organisation_id(conn, organisation) is None:
        raise NotFoundError(f"No organisation {organisation!r}.")
    return organisation


def _existing(conn: Connection, organisation: str, name: str) -> Row[Any]:
    row = _find(conn, organisation, name)
    if row is None and name in CORE_REGISTRIES:
        row = _found_or_made(conn, organisation, name)
    if row is None:
        raise NotFoundError(f"Registry {name!r} does not exist in organisation {organisation!r}.")
    return row


def get_registry(
    store: Store, name: str, *, entity: str, organisation: str | None = None
) -> RegistryRecord:
    with store.engine.begin() as conn:
        org = _organisation(conn, entity, organisation)
        return _record(_existing(conn, org, _validate_registry_name(name)))


def list_registries(
    store: Store, *, entity: str, organisation: str | None = None
) -> list[RegistryRecord]:
    """The registries of the organisation, by name; ``model`` and ``dataset`` always."""
    with store.engine.begin() as conn:
        org = _organisation(conn, entity, organisation)
        for core in CORE_REGISTRIES:
            _existing(conn, org, core)
        rows = conn.execute(
            select(registries).where(registries.c.organisation == org).order_by(registries.c.name)
        ).all()
        return [_record(r) for r in rows]


def update_registry(
    store: Store,
    name: str,
    *,
    organisation: str,
    description: Any = _UNSET,
    visibility: Any = _UNSET,
    artifact_types: Any = _UNSET,
) -> RegistryRecord:
    """Change the fields given. Allowed types may only be added to, as in W&B: links of a
    type already in the registry must stay valid."""
    values: dict[str, Any] = {"updated_at": now()}
    if description is not _UNSET:
        values["description"] = validate_description(description)
    if visibility is not _UNSET:
        values["visibility"] = _validate_visibility(visibility)
    with store.engine.begin() as conn:
        row = _existing(conn, organisation, _validate_registry_name(name))
        if artifact_types is not _UNSET:
            types = _validate_types(artifact_types)
            kept = set(row.artifact_types or ())
            if kept and not kept <= set(types):
                raise ValidationError(
                    "Types cannot be removed from a registry's allowed types: "
                    f"{sorted(kept - set(types))}."
                )
            values["artifact_types"] = _covering(conn, row, types)
        conn.execute(update(registries).where(registries.c.id == row.id).values(**values))
        return _record(_existing(conn, organisation, name))


def _covering(conn: Connection, row: Row[Any], types: list[str]) -> list[str]:
    """*types*, refused if a collection of the registry has a type not among them."""
    if not types:
        return types
    project_id = find_project(conn, row.organisation, REGISTRY_PREFIX + row.name)
    if project_id is not None:
        held = set(
            conn.execute(
                select(collections.c.type).where(collections.c.project_id == project_id)
            ).scalars()
        )
        if held - set(types):
            raise ValidationError(
                f"Registry {row.name!r} holds collections of type {sorted(held)}; its "
                "allowed types must include them."
            )
    return types


def delete_registry(store: Store, name: str, *, organisation: str) -> None:
    """Delete a registry with its collections and links (the linked versions stay)."""
    with store.engine.begin() as conn:
        row = _existing(conn, organisation, _validate_registry_name(name))
        project_id = find_project(conn, organisation, REGISTRY_PREFIX + name)
        if project_id is not None:
            collection_ids = list(
                conn.execute(
                    select(collections.c.id).where(collections.c.project_id == project_id)
                ).scalars()
            )
            link_ids = select(versions.c.id).where(versions.c.collection_id.in_(collection_ids))
            conn.execute(delete(aliases).where(aliases.c.collection_id.in_(collection_ids)))
            conn.execute(delete(tags).where(tags.c.version_id.in_(link_ids)))
            conn.execute(delete(lineage).where(lineage.c.version_id.in_(link_ids)))
            conn.execute(delete(versions).where(versions.c.collection_id.in_(collection_ids)))
            conn.execute(
                delete(collection_tags).where(collection_tags.c.collection_id.in_(collection_ids))
            )
            conn.execute(delete(collections).where(collections.c.id.in_(collection_ids)))
            conn.execute(delete(projects).where(projects.c.id == project_id))
        conn.execute(delete(registries).where(registries.c.id == row.id))


def create_organisation(store: Store, name: str) -> None:
    """Make organisation *name*; its registries live in the entity of that name.
    ConflictError when it exists, or when an entity of that name already belongs to
    another organisation (its projects would mix with the registries)."""
    validate_project(name)
    with store.engine.begin() as conn:
        if name == DEFAULT_ORGANISATION or _organisation_id(conn, name) is not None:
            raise ConflictError(f"Organisation {name!r} already exists.")
        if organisation_of(conn, name) != DEFAULT_ORGANISATION:
            raise ConflictError(f"{name!r} is an entity of another organisation.")
        try:
            with conn.begin_nested():
                conn.execute(insert(organisations).values(name=name, created_at=now()))
        except IntegrityError:
            raise ConflictError(f"Organisation {name!r} already exists.") from None


def list_organisations(store: Store) -> dict[str, list[str]]:
    """Each organisation (the default one too) with the entities it holds."""
    with store.engine.connect() as conn:
        held: dict[str, list[str]] = {DEFAULT_ORGANISATION: []}
        for row in conn.execute(select(organisations.c.name).order_by(organisations.c.name)):
            held[row.name] = []
        rows = conn.execute(
            select(entities.c.name, organisations.c.name.label("organisation"))
            .outerjoin(organisations, organisations.c.id == entities.c.organisation_id)
            .order_by(entities.c.name)
        ).all()
        for row in rows:
            org = row.organisation or DEFAULT_ORGANISATION
            if row.name != org:
                held[org].append(row.name)
        return held


def move_entity(store: Store, entity: str, organisation: str) -> None:
    """Put *entity* in *organisation*: registry paths of its runs name that organisation's
    registries from now on. Links made before stay where they are."""
    validate_project(entity)
    with store.engine.begin() as conn:
        if entity == DEFAULT_ORGANISATION or _organisation_id(conn, entity) is not None:
            raise ValidationError(f"{entity!r} is an organisation, not an entity to move.")
        if organisation == DEFAULT_ORGANISATION:
            org_id = None
        else:
            org_id = _organisation_id(conn, validate_project(organisation))
            if org_id is None:
                raise NotFoundError(f"No organisation {organisation!r}.")
        found = conn.execute(select(entities.c.id).where(entities.c.name == entity)).scalar()
        if found is None:
            conn.execute(insert(entities).values(name=entity, organisation_id=org_id))
        else:
            conn.execute(
                update(entities).where(entities.c.id == found).values(organisation_id=org_id)
            )
