"""Registry automations: webhooks called on events of a project or registry.

An event (:data:`~soko.core.automations.EVENTS`) is written, as one ``deliveries`` row per
automation it matches, inside the transaction that made it: the outbox. So an event is
never lost (it commits with the version, alias or link, or not at all) and a commit never
waits on a webhook. :mod:`soko.service.webhooks` sends the rows.
"""

from __future__ import annotations

import json
import secrets
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Row, delete, insert, or_, select, update

from soko.core.automations import (
    DELIVERY_STATES,
    EVENTS,
    PENDING,
    VERSION_CREATED,
    AutomationRecord,
    DeliveryRecord,
)
from soko.core.names import validate_name, validate_project
from soko.errors import NotFoundError, ValidationError
from soko.metadata.schema import (
    aliases,
    automations,
    collections,
    deliveries,
    entities,
    projects,
    versions,
)
from soko.service.catalog import now
from soko.service.store import Store

_MAX_SECRET = 256
EVENTS_WRITTEN = "soko_events_written"
"""Set in a connection's ``info`` by :func:`emit`: a delivery worker wakes when that
transaction commits (:class:`soko.service.webhooks.DeliveryWorker`)."""


def utc(stamp: datetime) -> datetime:
    """SQLite gives back naive datetimes; every stamp soko writes is UTC."""
    return stamp if stamp.tzinfo is not None else stamp.replace(tzinfo=UTC)


def _printable(text: str) -> bool:
    return all("!" <= char <= "~" for char in text)


def _validate_url(url: str) -> str:
    # Printable ASCII only: a URL with other characters is percent-encoded by its maker.
    if not url.startswith(("http://", "https://")) or len(url) > 2048 or not _printable(url):
        raise ValidationError(f"A webhook URL must be an http:// or https:// URL: {url!r}.")
    return url


def create_automation(
    store: Store,
    *,
    entity: str,
    project: str,
    event: str,
    url: str,
    collection: str | None = None,
    secret: str | None = None,
) -> AutomationRecord:
    """An automation of ``entity/project`` (or of one collection of it); *entity* is where the
    project lives (a registry's: its organisation's entity). A secret is made when none is
    given; the record carries it this once."""
    validate_project(entity)
    validate_project(project)
    if collection is not None:
        validate_name(collection)
    if event not in EVENTS:
        raise ValidationError(f"Unknown event {event!r}: one of {', '.join(EVENTS)}.")
    _validate_url(url)
    if secret is None:
        secret = secrets.token_hex(32)
    if not secret or len(secret) > _MAX_SECRET or not _printable(secret):
        raise ValidationError(
            f"A webhook secret has 1 to {_MAX_SECRET} printable ASCII characters, no spaces."
        )
    automation_id = str(uuid.uuid4())
    stamp = now()
    with store.engine.begin() as conn:
        conn.execute(
            insert(automations).values(
                id=automation_id,
                entity=entity,
                project=project,
                collection=collection,
                event=event,
                url=url,
                secret=secret,
                enabled=True,
                created_at=stamp,
            )
        )
        row = conn.execute(select(automations).where(automations.c.id == automation_id)).one()
    return _record(row, with_secret=True)


def _record(row: Row[Any], *, with_secret: bool = False) -> AutomationRecord:
    return AutomationRecord(
        id=row.id,
        entity=row.entity,
        project=row.project,
        collection=row.collection,
        event=row.event,
        url=row.url,
        enabled=bool(row.enabled),
        created_at=utc(row.created_at),
        secret=row.secret if with_secret else None,
    )


def list_automations(store: Store, *, entity: str, project: str) -> list[AutomationRecord]:
    with store.engine.connect() as conn:
        rows = conn.execute(
            select(automations)
            .where(automations.c.entity == entity, automations.c.project == project)
            .order_by(automations.c.created_at, automations.c.id)
        ).all()
    return [_record(row) for row in rows]


def get_automation(store: Store, automation_id: str) -> AutomationRecord:
    with store.engine.connect() as conn:
        row = conn.execute(select(automations).where(automations.c.id == automation_id)).first()
    if row is None:
        raise NotFoundError(f"No automation with id {automation_id!r}.")
    return _record(row)


def set_enabled(store: Store, automation_id: str, *, enabled: bool) -> AutomationRecord:
    """Enable or disable an automation. A disabled one matches no event, and the
    deliveries it had pending wait, unsent, until it is enabled again (within their retry
    window), so that disabling a webhook for a while loses nothing already owed to it."""
    with store.engine.begin() as conn:
        changed = conn.execute(
            update(automations).where(automations.c.id == automation_id).values(enabled=enabled)
        )
        if changed.rowcount == 0:
            raise NotFoundError(f"No automation with id {automation_id!r}.")
        if enabled:
            # Wakes a server's worker for the deliveries that waited (see emit).
            conn.info[EVENTS_WRITTEN] = True
        row = conn.execute(select(automations).where(automations.c.id == automation_id)).one()
    return _record(row)


def delete_automation(store: Store, automation_id: str) -> None:
    """Remove an automation with its deliveries (sent or not)."""
    with store.engine.begin() as conn:
        conn.execute(delete(deliveries).where(deliveries.c.automation_id == automation_id))
        gone = conn.execute(delete(automations).where(automations.c.id == automation_id))
        if gone.rowcount == 0:
            raise NotFoundError(f"No automation with id {automation_id!r}.")


def list_deliveries(
    store: Store, automation_id: str, *, status: str | None = None, limit: int = 1000
) -> list[DeliveryRecord]:
    """The deliveries of an automation, newest first."""
    if status is not None and status not in DELIVERY_STATES:
        raise ValidationError(f"Unknown status {status!r}: one of {', '.join(DELIVERY_STATES)}.")
    query = select(deliveries).where(deliveries.c.automation_id == automation_id)
    if status is not None:
        query = query.where(deliveries.c.status == status)
    with store.engine.connect() as conn:
        rows = conn.execute(query.order_by(deliveries.c.id.desc()).limit(limit)).all()
    return [delivery_record(row) for row in rows]


def delivery_record(row: Row[Any]) -> DeliveryRecord:
    return DeliveryRecord(
        id=row.id,
        automation_id=row.automation_id,
        event_id=row.event_id,
        event=json.loads(row.payload)["event_type"],
        status=row.status,
        attempts=row.attempts,
        next_attempt_at=utc(row.next_attempt_at),
        last_status_code=row.last_status_code,
        last_latency_ms=row.last_latency_ms,
        last_error=row.last_error,
        created_at=utc(row.created_at),
        updated_at=utc(row.updated_at),
        payload=row.payload,
    )


def emit(
    conn: Connection,
    event: str,
    version_id: str,
    *,
    alias: str | None = None,
    version_aliases: Sequence[str] | None = None,
) -> None:
    """Write *event* about a version into the outbox of every automation it matches, inside
    the caller's transaction. *version_aliases*: the aliases the version will have, when the
    caller sets them after; else read here."""
    where = conn.execute(
        select(
            entities.c.name.label("entity"),
            projects.c.name.label("project"),
            collections.c.name.label("collection"),
            collections.c.type,
            versions.c.version_index,
            versions.c.source_version_id,
            versions.c.collection_id,
        )
        .select_from(versions)
        .join(collections, collections.c.id == versions.c.collection_id)
        .join(projects, projects.c.id == collections.c.project_id)
        .join(entities, entities.c.id == projects.c.entity_id)
        .where(versions.c.id == version_id)
    ).one()
    targets = (
        conn.execute(
            select(automations.c.id).where(
                automations.c.entity == where.entity,
                automations.c.project == where.project,
                automations.c.event == event,
                automations.c.enabled.is_(True),
                or_(
                    automations.c.collection.is_(None), automations.c.collection == where.collection
                ),
            )
        )
        .scalars()
        .all()
    )
    if not targets:
        return
    if version_aliases is None:
        version_aliases = list(
            conn.execute(
                select(aliases.c.alias)
                .where(
                    aliases.c.version_id == version_id,
                    aliases.c.collection_id == where.collection_id,
                )
                .order_by(aliases.c.id)
            ).scalars()
        )
    stamp = now()
    event_id = str(uuid.uuid4())
    payload: dict[str, Any] = {
        "event_id": event_id,
        "event_type": event,
        "timestamp": stamp.isoformat(),
        "entity": where.entity,
        "project": where.project,
        "collection": where.collection,
        "artifact_type": where.type,
        "version": f"v{where.version_index}",
        "version_id": version_id,
        "aliases": list(dict.fromkeys(version_aliases)),
        "is_link": where.source_version_id is not None,
        "source_version_id": where.source_version_id,
    }
    if event != VERSION_CREATED:
        payload["alias"] = alias
    body = json.dumps(payload, sort_keys=True)
    conn.info[EVENTS_WRITTEN] = True
    for automation_id in targets:
        conn.execute(
            insert(deliveries).values(
                automation_id=automation_id,
                event_id=event_id,
                payload=body,
                attempts=0,
                next_attempt_at=stamp,
                status=PENDING,
                created_at=stamp,
                updated_at=stamp,
            )
        )
