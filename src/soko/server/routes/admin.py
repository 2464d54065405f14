"""Users, API keys and roles: who am I, list, create and disable users, make, list and revoke
keys (with an expiry), grant, list and revoke roles.

A server admin manages everything; a project admin grants roles on its own project; any
user may list its own keys and roles, make a new key for itself and revoke its own keys.
"""

from __future__ import annotations

from fastapi import APIRouter, Response

from soko.server import auth
from soko.server.deps import Caller, State
from soko.wire import API_PREFIX
from soko.wire.auth import (
    KeyIn,
    KeyList,
    KeyOut,
    RoleIn,
    RoleList,
    RoleOut,
    UserIn,
    UserList,
    UserName,
    UserOut,
    UserPatch,
    WhoAmI,
)
from soko.wire.fields import KeyId, ProjectName

router = APIRouter(prefix=API_PREFIX, tags=["auth"])


@router.get("/whoami")
def whoami(caller: Caller) -> WhoAmI:
    roles = [RoleOut(entity=e, project=p, role=r) for (e, p), r in sorted(caller.roles.items())]
    return WhoAmI(user=caller.name, admin=caller.admin, roles=roles)


@router.get("/users")
def list_users(state: State, caller: Caller) -> UserList:
    caller.require_admin()
    return UserList(users=auth.list_users(state.store.engine))


@router.post("/users", status_code=201)
def create_user(body: UserIn, state: State, caller: Caller) -> UserOut:
    caller.require_admin()
    auth.create_user(state.store.engine, body.name, admin=body.admin)
    return auth.get_user(state.store.engine, body.name)


@router.patch("/users/{name}")
def update_user(name: UserName, body: UserPatch, state: State, caller: Caller) -> UserOut:
    """Disable a user (every key of it is refused from the next request on) or enable it."""
    caller.require_admin()
    return auth.set_disabled(state.store.engine, name, disabled=body.disabled, by=caller)


@router.get("/users/{name}/roles")
def list_roles(name: UserName, state: State, caller: Caller) -> RoleList:
    """The roles granted to *name* (project ``*``: every project of the entity)."""
    if name != caller.name:
        caller.require_admin()
    return RoleList(roles=auth.list_roles(state.store.engine, name))


@router.get("/users/{name}/keys")
def list_keys(name: UserName, state: State, caller: Caller) -> KeyList:
    """The keys of *name*, revoked ones too: their ids, to revoke one; never a secret."""
    if name != caller.name:
        caller.require_admin()
    return KeyList(keys=auth.list_keys(state.store.engine, name))


@router.post("/users/{name}/keys", status_code=201)
def create_key(name: UserName, state: State, caller: Caller, body: KeyIn | None = None) -> KeyOut:
    """A new key for *name*; shown once in this answer. Refused from ``expires_at`` on."""
    if name != caller.name:
        caller.require_admin()
    expires_at = body.expires_at if body is not None else None
    key_id, key = auth.add_key(state.store.engine, name, expires_at=expires_at)
    return KeyOut(key_id=key_id, key=key, user=name, expires_at=expires_at)


@router.delete("/keys/{key_id}", status_code=204)
def revoke_key(key_id: KeyId, state: State, caller: Caller) -> Response:
    auth.revoke_key(state.store.engine, key_id, by=caller)
    return Response(status_code=204)


@router.put("/users/{name}/roles")
def grant_role(name: UserName, body: RoleIn, state: State, caller: Caller) -> RoleOut:
    caller.require(body.entity, body.project, "admin")
    auth.set_role(
        state.store.engine, name, entity=body.entity, project=body.project, role=body.role
    )
    return RoleOut(entity=body.entity, project=body.project, role=body.role)


@router.delete("/users/{name}/roles/{entity}/{project}", status_code=204)
def revoke_role(
    name: UserName, entity: ProjectName, project: ProjectName, state: State, caller: Caller
) -> Response:
    caller.require(entity, project, "admin")
    auth.remove_role(state.store.engine, name, entity=entity, project=project)
    return Response(status_code=204)
