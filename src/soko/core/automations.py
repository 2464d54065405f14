"""Registry automations as records: a webhook called on an event, and its deliveries."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

VERSION_CREATED = "version_created"
"""A version was committed into a collection, or a link made into a registry collection."""
ALIAS_ADDED = "alias_added"
"""An alias other than ``latest`` came to point at a version."""
EVENTS = (VERSION_CREATED, ALIAS_ADDED)

PENDING = "pending"
DELIVERED = "delivered"
FAILED = "failed"
DELIVERY_STATES = (PENDING, DELIVERED, FAILED)

SIGNATURE_HEADER = "X-Soko-Signature"
EVENT_ID_HEADER = "X-Soko-Event-Id"


@dataclass(frozen=True)
class AutomationRecord:
    id: str
    entity: str
    project: str
    collection: str | None
    event: str
    url: str
    enabled: bool
    created_at: datetime
    secret: str | None = None
    """Given back only by the call that made the automation."""


@dataclass(frozen=True)
class DeliveryRecord:
    id: int
    automation_id: str
    event_id: str
    event: str
    status: str
    attempts: int
    next_attempt_at: datetime
    last_status_code: int | None
    last_latency_ms: float | None
    last_error: str | None
    created_at: datetime
    updated_at: datetime
    payload: str
