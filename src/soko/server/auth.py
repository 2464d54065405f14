"""Who is calling and what they may do: API keys, users and roles per project.

A key is ``soko_<id>_<secret>`` with 256 random bits; the database keeps only its SHA-256,
so a copy of the database yields no key. Roles, in increasing power:

- ``viewer``: read a project's versions, manifests, blobs, runs and lineage;
- ``writer``: also log, change, delete and link versions, start and finish runs;
- ``admin``: also grant and revoke roles on the project.

A role is granted per ``(entity, project)``, or per entity with project ``*``. A server
admin (``users.is_admin``) may do everything. A registry is the project
``wandb-registry-<name>`` of its organisation's entity, so these roles are its roles (W&B's
registry Viewer, Member and Admin are ``viewer``, ``writer`` and ``admin``); a registry of
``organization`` visibility is also read by every member of its organisation, a user with a
role on an entity it holds (or on the organisation's own entity), as in W&B, while a
``restricted`` one is read only by those granted a role on it.

Blobs are content-addressed and stored once for all projects, but uploaded *for* a project
(writer role there), and a commit may name only blobs its project has proven it holds
(``soko.service.possession``); reading one needs the viewer role on a project whose version
names it.

A key may carry an expiry (``api_keys.expires_at``), and a user may be disabled
(``users.disabled_at``): both refuse the key from the next request on, with a 401 that
says which, since only the key's holder can see it.

Every key records where it came from (``api_keys.origin``): ``env`` for ``SOKO_ADMIN_KEY``,
``generated`` for the key printed at the first start, ``api`` for keys made through the API;
null for keys made before origins were recorded. The one unrevoked ``env`` key is the
operator's: starting the server with another ``SOKO_ADMIN_KEY`` revokes it, and the
``generated`` key with it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from soko.core.records import as_utc
from soko.errors import (
    AuthenticationError,
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    ValidationError,
)
from soko.metadata.engine import reading
from soko.metadata.schema import api_keys, project_roles, users
from soko.service.catalog import now
from soko.service.registries import memberships, registry_name
from soko.wire.auth import ROLES, KeyInfo, KeyOrigin, Role, RoleOut, UserOut

ADMIN_USER = "admin"
_KEY_PREFIX = "soko_"
_RANK = {role: rank for rank, role in enumerate(ROLES, start=1)}
# An operator's key may be typed by a person; generated keys have 256 random bits. These
# bounds refuse the obvious mistakes ("admin", "changeme", a row of one letter), no more.
ADMIN_KEY_MIN_LENGTH = 32
ADMIN_KEY_MIN_DISTINCT = 10


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def new_key() -> tuple[str, str]:
    """A fresh ``(key_id, key)``.

    The secret is hex, without ``-``: the ``wandb`` client takes what follows a key's first
    ``-`` as its secret and refuses one shorter than 40 characters, so a soko key with a
    dash would not pass as ``WANDB_API_KEY``."""
    key_id = secrets.token_hex(6)
    return key_id, f"{_KEY_PREFIX}{key_id}_{secrets.token_hex(32)}"


def check_admin_key(key: str) -> None:
    """ValidationError (one line, without the key) for a ``SOKO_ADMIN_KEY`` too weak to use."""
    distinct = len(set(key))
    if len(key) < ADMIN_KEY_MIN_LENGTH or distinct < ADMIN_KEY_MIN_DISTINCT:
        raise ValidationError(
            f"SOKO_ADMIN_KEY is too weak: it has {len(key)} characters, {distinct} of them "
            f"different; it needs at least {ADMIN_KEY_MIN_LENGTH} characters, "
            f"{ADMIN_KEY_MIN_DISTINCT} different. Make one with: "
            "python -c 'import secrets; print(secrets.token_hex(32))'"
        )


@dataclass(frozen=True, slots=True)
class Principal:
    user_id: int
    name: str
    admin: bool
    roles: Mapping[tuple[str, str], Role] = field(default_factory=dict)
    organisations: frozenset[str] = frozenset()
    """The organisations the user is a member of: those holding an entity it has a role on."""
    restricted: frozenset[tuple[str, str]] = frozenset()
    """``(organisation, project)`` of the restricted registries of those organisations."""

    def role_on(self, entity: str, project: str) -> Role | None:
        """The strongest role this user holds on the project (a ``*`` grant counts)."""
        best: Role | None = None
        for role in (self.roles.get((entity, project)), self.roles.get((entity, "*"))):
            if role is not None and (best is None or _RANK[role] > _RANK[best]):
                best = role
        return best

    def may(self, entity: str, project: str, role: Role) -> bool:
        if self.admin:
            return True
        held = self.role_on(entity, project)
        if held is not None and _RANK[held] >= _RANK[role]:
            return True
        return role == "viewer" and self._reads_as_member(entity, project)

    def _reads_as_member(self, entity: str, project: str) -> bool:
        """A registry of ``organization`` visibility is read by all of its organisation."""
        return (
            registry_name(project) is not None
            and entity in self.organisations
            and (entity, project) not in self.restricted
        )

    def require(self, entity: str, project: str, role: Role) -> None:
        if not self.may(entity, project, role):
            raise PermissionDeniedError(
                f"User {self.name!r} needs the {role} role on {entity}/{project} for this."
            )

    def require_admin(self) -> None:
        if not self.admin:
            raise PermissionDeniedError(f"User {self.name!r} is not a server admin.")


def authenticate(engine: Engine, key: str | None) -> Principal:
    """The user holding *key*; AuthenticationError for no key, an unknown or revoked one."""
    if not key:
        raise AuthenticationError(
            "This soko server needs an API key: set SOKO_API_KEY or run `soko login KEY`."
        )
    return authenticate_digest(engine, hash_key(key))


def authenticate_digest(engine: Engine, digest: str) -> Principal:
    """The user holding the key whose :func:`hash_key` is *digest* (a web UI session keeps
    that, never the key); AuthenticationError as :func:`authenticate` gives."""
    with reading(engine) as conn:
        row = conn.execute(
            select(
                api_keys.c.key_hash,
                api_keys.c.expires_at,
                users.c.id,
                users.c.name,
                users.c.is_admin,
                users.c.disabled_at,
            )
            .join(users, users.c.id == api_keys.c.user_id)
            .where(api_keys.c.key_hash == digest, api_keys.c.revoked_at.is_(None))
        ).first()
        # The index lookup already matched; the constant-time comparison documents intent.
        if row is None or not hmac.compare_digest(row.key_hash, digest):
            raise AuthenticationError("Unknown or revoked API key.")
        # Only the key's holder learns these: they say what to ask the server's admin for.
        if row.expires_at is not None and as_utc(row.expires_at) <= now():
            raise AuthenticationError(
                f"This API key expired at {as_utc(row.expires_at).isoformat()}; ask the "
                "server's admin for a new one."
            )
        if row.disabled_at is not None:
            raise AuthenticationError(f"The user {row.name!r} is disabled on this server.")
        return _principal(conn, row)


def _roles_of(conn: Connection, user_id: int) -> dict[tuple[str, str], Role]:
    return {
        (r.entity, r.project): r.role
        for r in conn.execute(
            select(project_roles.c.entity, project_roles.c.project, project_roles.c.role).where(
                project_roles.c.user_id == user_id
            )
        )
    }


def _principal(conn: Connection, row: Any) -> Principal:
    """The principal of user *row* (id, name, is_admin): its roles, and the organisations
    and restricted registries those roles reach."""
    roles = _roles_of(conn, row.id)
    organisations, restricted = (
        memberships(conn, {entity for entity, _ in roles})
        if roles and not row.is_admin
        else (frozenset(), frozenset())
    )
    return Principal(
        user_id=row.id,
        name=row.name,
        admin=bool(row.is_admin),
        roles=roles,
        organisations=organisations,
        restricted=restricted,
    )


def principal_of(engine: Engine, user_id: int) -> Principal:
    """The user *user_id* as it is now, for a request that carries a URL signed for it
    instead of a key; AuthenticationError when it was removed or disabled since."""
    with engine.connect() as conn:
        row = conn.execute(
            select(users.c.id, users.c.name, users.c.is_admin, users.c.disabled_at).where(
                users.c.id == user_id
            )
        ).first()
        if row is None or row.disabled_at is not None:
            raise AuthenticationError("The user this URL was signed for may no longer use it.")
        return _principal(conn, row)


def _user_id(engine: Engine, name: str) -> int:
    with engine.connect() as conn:
        found = conn.execute(select(users.c.id).where(users.c.name == name)).scalar()
    if found is None:
        raise NotFoundError(f"No user named {name!r}.")
    return int(found)


def create_user(engine: Engine, name: str, *, admin: bool = False) -> None:
    try:
        with engine.begin() as conn:
            conn.execute(insert(users).values(name=name, is_admin=admin, created_at=now()))
    except IntegrityError:
        raise ConflictError(f"A user named {name!r} exists already.") from None


def _user_out(row: Any) -> UserOut:
    return UserOut(
        name=row.name,
        admin=bool(row.is_admin),
        created_at=row.created_at,
        disabled_at=row.disabled_at,
    )


def get_user(engine: Engine, name: str) -> UserOut:
    with engine.connect() as conn:
        row = conn.execute(select(users).where(users.c.name == name)).first()
    if row is None:
        raise NotFoundError(f"No user named {name!r}.")
    return _user_out(row)


def list_users(engine: Engine) -> list[UserOut]:
    with engine.connect() as conn:
        rows = conn.execute(select(users).order_by(users.c.name)).all()
    return [_user_out(r) for r in rows]


def set_disabled(engine: Engine, name: str, *, disabled: bool, by: Principal) -> UserOut:
    """Disable (its keys are refused from the next request on) or enable *name* again.
    A caller cannot disable itself, so the last admin cannot lock everyone out by mistake."""
    if disabled and name == by.name:
        raise ConflictError("You cannot disable yourself; another server admin can.")
    user_id = _user_id(engine, name)
    with engine.begin() as conn:
        conn.execute(
            update(users)
            .where(users.c.id == user_id)
            .values(disabled_at=now() if disabled else None)
        )
    return get_user(engine, name)


def list_roles(engine: Engine, name: str) -> list[RoleOut]:
    user_id = _user_id(engine, name)
    with engine.connect() as conn:
        rows = conn.execute(
            select(project_roles.c.entity, project_roles.c.project, project_roles.c.role)
            .where(project_roles.c.user_id == user_id)
            .order_by(project_roles.c.entity, project_roles.c.project)
        ).all()
    return [RoleOut(entity=r.entity, project=r.project, role=r.role) for r in rows]


def list_keys(engine: Engine, user: str) -> list[KeyInfo]:
    """The keys of *user*, revoked ones too, oldest first; never a secret or its hash."""
    user_id = _user_id(engine, user)
    columns = (
        api_keys.c.id,
        api_keys.c.created_at,
        api_keys.c.revoked_at,
        api_keys.c.origin,
        api_keys.c.expires_at,
    )
    with engine.connect() as conn:
        rows = conn.execute(
            select(*columns)
            .where(api_keys.c.user_id == user_id)
            .order_by(api_keys.c.created_at, api_keys.c.id)
        ).all()
    return [
        KeyInfo(
            key_id=r.id,
            created_at=r.created_at,
            revoked_at=r.revoked_at,
            origin=r.origin,
            expires_at=r.expires_at,
        )
        for r in rows
    ]


def add_key(
    engine: Engine,
    user: str,
    *,
    origin: KeyOrigin = "api",
    expires_at: datetime | None = None,
) -> tuple[str, str]:
    """Give *user* a new key, refused from *expires_at* on; returns ``(key_id, key)``."""
    if expires_at is not None and as_utc(expires_at) <= now():
        raise ValidationError("A new key's expires_at must be in the future.")
    user_id = _user_id(engine, user)
    key_id, key = new_key()
    with engine.begin() as conn:
        conn.execute(
            insert(api_keys).values(
                id=key_id,
                user_id=user_id,
                key_hash=hash_key(key),
                created_at=now(),
                origin=origin,
                expires_at=expires_at,
            )
        )
    return key_id, key


def revoke_key(engine: Engine, key_id: str, *, by: Principal) -> None:
    with engine.begin() as conn:
        owner = conn.execute(select(api_keys.c.user_id).where(api_keys.c.id == key_id)).scalar()
        if owner is None or (owner != by.user_id and not by.admin):
            raise NotFoundError(f"No API key {key_id!r} of yours.")
        conn.execute(update(api_keys).where(api_keys.c.id == key_id).values(revoked_at=now()))


def set_role(engine: Engine, user: str, *, entity: str, project: str, role: Role) -> None:
    user_id = _user_id(engine, user)
    with engine.begin() as conn:
        conn.execute(
            delete(project_roles).where(
                project_roles.c.user_id == user_id,
                project_roles.c.entity == entity,
                project_roles.c.project == project,
            )
        )
        conn.execute(
            insert(project_roles).values(user_id=user_id, entity=entity, project=project, role=role)
        )


def remove_role(engine: Engine, user: str, *, entity: str, project: str) -> None:
    user_id = _user_id(engine, user)
    with engine.begin() as conn:
        conn.execute(
            delete(project_roles).where(
                project_roles.c.user_id == user_id,
                project_roles.c.entity == entity,
                project_roles.c.project == project,
            )
        )


def bootstrap_admin(engine: Engine, *, env_key: str | None) -> str | None:
    """Make sure the server has an admin who can log in.

    With *env_key* (``SOKO_ADMIN_KEY``, see :func:`check_admin_key`), that key becomes the
    one unrevoked ``env`` key of the ``admin`` user (:func:`_adopt_env_key`). Otherwise, on
    the first start only (no user yet), a key is generated and returned so that the caller
    prints it once; it cannot be shown again. Safe when several servers start together on
    one database: one of them creates the user, and servers given the same key agree on it.
    """
    if env_key is not None:
        check_admin_key(env_key)
    with engine.connect() as conn:
        has_users = conn.execute(select(users.c.id).limit(1)).first() is not None
        admin_id = conn.execute(select(users.c.id).where(users.c.name == ADMIN_USER)).scalar()
    if env_key is None and has_users:
        return None
    if admin_id is None:
        try:
            create_user(engine, ADMIN_USER, admin=True)
        except ConflictError:  # another server created it in the meantime
            if env_key is None:
                return None
    if env_key is not None:
        admin_id = _user_id(engine, ADMIN_USER)
        try:
            with engine.begin() as conn:
                _adopt_env_key(conn, admin_id, env_key)
        except IntegrityError:
            # Another server inserted the same key after we looked; now it is there to adopt.
            with engine.begin() as conn:
                _adopt_env_key(conn, admin_id, env_key)
        return None
    _, key = add_key(engine, ADMIN_USER, origin="generated")
    return key


def _adopt_env_key(conn: Connection, admin_id: int, env_key: str) -> None:
    """Within one transaction: *env_key* becomes an ``env`` key of the admin (added if new),
    and every other unrevoked ``env`` or ``generated`` key of the admin is revoked.

    A revoked key is never revived, and a key of another user never becomes the admin's:
    both refuse the start. Two servers given the same key both keep it, since each revokes
    only keys other than it; when both insert it at once, the unique hash makes one fail
    (IntegrityError), and that one runs again and finds it.
    """
    found = conn.execute(
        select(api_keys.c.id, api_keys.c.user_id, api_keys.c.revoked_at, api_keys.c.origin).where(
            api_keys.c.key_hash == hash_key(env_key)
        )
    ).first()
    if found is None:
        key_id, _ = new_key()
        conn.execute(
            insert(api_keys).values(
                id=key_id,
                user_id=admin_id,
                key_hash=hash_key(env_key),
                created_at=now(),
                origin="env",
            )
        )
    elif found.user_id != admin_id:
        raise ValidationError(
            f"SOKO_ADMIN_KEY is an API key of another user than {ADMIN_USER!r}; choose a new key."
        )
    elif found.revoked_at is not None:
        raise ValidationError(
            f"SOKO_ADMIN_KEY is the revoked key {found.id!r}; a revoked key stays revoked, "
            "so choose a new key."
        )
    else:
        key_id = found.id
        if found.origin != "env":
            # A key made before origins were recorded, or one the admin made and then put
            # into SOKO_ADMIN_KEY: from now on a rotation replaces it.
            conn.execute(update(api_keys).where(api_keys.c.id == key_id).values(origin="env"))
    # The bootstrap keys the operator replaces: the previous SOKO_ADMIN_KEY, and the key
    # printed at the first start, which a person may have copied anywhere.
    conn.execute(
        update(api_keys)
        .where(
            api_keys.c.user_id == admin_id,
            api_keys.c.origin.in_(("env", "generated")),
            api_keys.c.revoked_at.is_(None),
            api_keys.c.id != key_id,
        )
        .values(revoked_at=now())
    )
