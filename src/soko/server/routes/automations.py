"""Automations of a project or registry: webhooks on its events, and their deliveries.

A writer of the project (for a registry: of its project in the organisation's entity)
manages them; the secret is answered only when an automation is made.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from soko.errors import NotFoundError
from soko.server.deps import Caller, State
from soko.service import automations
from soko.service.registries import home_entity
from soko.wire import API_PREFIX
from soko.wire.automations import (
    AutomationIn,
    AutomationList,
    AutomationOut,
    AutomationPatch,
    DeliveryList,
    DeliveryOut,
    Status,
)
from soko.wire.fields import ProjectName

router = APIRouter(prefix=API_PREFIX, tags=["automations"])
_BASE = "/projects/{entity}/{project}/automations"
AutomationId = Annotated[str, Path(min_length=1, max_length=64)]


@router.get(_BASE)
def list_automations(
    entity: ProjectName, project: ProjectName, state: State, caller: Caller
) -> AutomationList:
    entity = home_entity(state.store, entity, project)
    caller.require(entity, project, "writer")
    records = automations.list_automations(state.store, entity=entity, project=project)
    return AutomationList(automations=[AutomationOut.of(r) for r in records])


@router.post(_BASE, status_code=201)
def create_automation(
    entity: ProjectName, project: ProjectName, body: AutomationIn, state: State, caller: Caller
) -> AutomationOut:
    entity = home_entity(state.store, entity, project)
    caller.require(entity, project, "writer")
    record = automations.create_automation(
        state.store,
        entity=entity,
        project=project,
        event=body.event,
        url=body.url,
        collection=body.collection,
        secret=body.secret,
    )
    return AutomationOut.of(record)


def _own(state: State, entity: str, project: str, automation_id: str) -> None:
    record = automations.get_automation(state.store, automation_id)
    if (record.entity, record.project) != (entity, project):
        raise NotFoundError(f"No automation with id {automation_id!r} in {entity}/{project}.")


@router.delete(_BASE + "/{automation_id}", status_code=204)
def delete_automation(
    entity: ProjectName,
    project: ProjectName,
    automation_id: AutomationId,
    state: State,
    caller: Caller,
) -> Response:
    entity = home_entity(state.store, entity, project)
    caller.require(entity, project, "writer")
    _own(state, entity, project, automation_id)
    automations.delete_automation(state.store, automation_id)
    return Response(status_code=204)


@router.patch(_BASE + "/{automation_id}")
def update_automation(
    entity: ProjectName,
    project: ProjectName,
    automation_id: AutomationId,
    body: AutomationPatch,
    state: State,
    caller: Caller,
) -> AutomationOut:
    """Enable or disable an automation (secret left out)."""
    entity = home_entity(state.store, entity, project)
    caller.require(entity, project, "writer")
    _own(state, entity, project, automation_id)
    return AutomationOut.of(
        automations.set_enabled(state.store, automation_id, enabled=body.enabled)
    )


@router.get(_BASE + "/{automation_id}/deliveries")
def list_deliveries(
    entity: ProjectName,
    project: ProjectName,
    automation_id: AutomationId,
    state: State,
    caller: Caller,
    status: Status | None = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> DeliveryList:
    """Newest first: each with its last attempt's status code, latency and error."""
    entity = home_entity(state.store, entity, project)
    caller.require(entity, project, "writer")
    _own(state, entity, project, automation_id)
    records = automations.list_deliveries(state.store, automation_id, status=status, limit=limit)
    return DeliveryList(deliveries=[DeliveryOut.of(r) for r in records])
