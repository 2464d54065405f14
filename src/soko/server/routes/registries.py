"""Registries of an organisation, and changes to collections (rename, tags, delete).

A registry's links live in the project ``wandb-registry-<name>`` of its organisation's
entity, and the roles on that project are the roles on the registry: a viewer reads it, a
writer links into it, an admin changes or deletes it. A role on the organisation's entity
with project ``*`` covers all its registries; creating one needs the admin role there.
"""

from __future__ import annotations

from fastapi import APIRouter, Response

from soko.core.records import RegistryRecord
from soko.server.auth import Principal
from soko.server.deps import Caller, State
from soko.service import collections, registries
from soko.service.registries import REGISTRY_PREFIX, home_entity
from soko.wire import API_PREFIX
from soko.wire.fields import CollectionName, ProjectName
from soko.wire.records import CollectionOut
from soko.wire.registries import (
    EntityOrganisationIn,
    OrganisationIn,
    OrganisationList,
    OrganisationOut,
    RegistryIn,
    RegistryList,
    RegistryOut,
    UpdateCollectionIn,
    UpdateRegistryIn,
)

router = APIRouter(prefix=API_PREFIX, tags=["registries"])


def _readable(caller: Principal, record: RegistryRecord) -> bool:
    return caller.may(record.organisation, record.project, "viewer")


@router.get("/registries")
def list_registries(
    state: State, caller: Caller, entity: ProjectName, organisation: ProjectName | None = None
) -> RegistryList:
    """The registries of the organisation that the caller may read."""
    records = registries.list_registries(state.store, entity=entity, organisation=organisation)
    return RegistryList(registries=[RegistryOut.of(r) for r in records if _readable(caller, r)])


@router.post("/registries")
def create_registry(body: RegistryIn, state: State, caller: Caller) -> RegistryOut:
    org = registries.resolve_organisation(
        state.store, entity=body.entity, organisation=body.organisation
    )
    caller.require(org, REGISTRY_PREFIX + body.name, "admin")
    record = registries.create_registry(
        state.store,
        body.name,
        entity=body.entity,
        organisation=org,
        visibility=body.visibility,
        description=body.description,
        artifact_types=body.artifact_types,
    )
    return RegistryOut.of(record)


@router.get("/registries/{name}")
def get_registry(
    name: CollectionName,
    state: State,
    caller: Caller,
    entity: ProjectName,
    organisation: ProjectName | None = None,
) -> RegistryOut:
    record = registries.get_registry(state.store, name, entity=entity, organisation=organisation)
    caller.require(record.organisation, record.project, "viewer")
    return RegistryOut.of(record)


@router.patch("/registries/{name}")
def update_registry(
    name: CollectionName,
    body: UpdateRegistryIn,
    state: State,
    caller: Caller,
    entity: ProjectName,
    organisation: ProjectName | None = None,
) -> RegistryOut:
    """Change the fields given; a field left out of the body is left as it is."""
    org = registries.resolve_organisation(state.store, entity=entity, organisation=organisation)
    caller.require(org, REGISTRY_PREFIX + name, "admin")
    changes = {field: getattr(body, field) for field in body.model_fields_set}
    record = registries.update_registry(state.store, name, organisation=org, **changes)
    return RegistryOut.of(record)


@router.delete("/registries/{name}", status_code=204)
def delete_registry(
    name: CollectionName,
    state: State,
    caller: Caller,
    entity: ProjectName,
    organisation: ProjectName | None = None,
) -> Response:
    org = registries.resolve_organisation(state.store, entity=entity, organisation=organisation)
    caller.require(org, REGISTRY_PREFIX + name, "admin")
    registries.delete_registry(state.store, name, organisation=org)
    return Response(status_code=204)


@router.patch("/projects/{entity}/{project}/collections/{name}")
def update_collection(
    entity: ProjectName,
    project: ProjectName,
    name: CollectionName,
    body: UpdateCollectionIn,
    state: State,
    caller: Caller,
) -> CollectionOut:
    """Rename a collection or change its description or tags."""
    entity = home_entity(state.store, entity, project)
    caller.require(entity, project, "writer")
    fields = body.model_fields_set
    record = collections.update_collection(
        state.store,
        entity,
        project,
        name,
        new_name=body.name,
        tags_to_set=body.tags,
        **({"description": body.description} if "description" in fields else {}),
    )
    return CollectionOut.of(record)


@router.delete("/projects/{entity}/{project}/collections/{name}", status_code=204)
def delete_collection(
    entity: ProjectName, project: ProjectName, name: CollectionName, state: State, caller: Caller
) -> Response:
    """Delete a collection with its versions; refused while one of them is linked."""
    entity = home_entity(state.store, entity, project)
    caller.require(entity, project, "writer")
    collections.delete_collection(state.store, entity, project, name)
    return Response(status_code=204)


@router.get("/organisations")
def list_organisations(state: State, caller: Caller) -> OrganisationList:
    """Organisations and the entities each holds (server admins only)."""
    caller.require_admin()
    held = registries.list_organisations(state.store)
    return OrganisationList(
        organisations=[OrganisationOut(name=n, entities=e) for n, e in held.items()]
    )


@router.post("/organisations", status_code=201)
def create_organisation(body: OrganisationIn, state: State, caller: Caller) -> OrganisationOut:
    caller.require_admin()
    registries.create_organisation(state.store, body.name)
    return OrganisationOut(name=body.name, entities=[])


@router.put("/entities/{entity}/organisation", status_code=204)
def move_entity(
    entity: ProjectName, body: EntityOrganisationIn, state: State, caller: Caller
) -> Response:
    """Put an entity in an organisation: its registry paths name that one's registries."""
    caller.require_admin()
    registries.move_entity(state.store, entity, body.organisation)
    return Response(status_code=204)
