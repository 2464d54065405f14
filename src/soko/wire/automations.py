"""Automations and their deliveries on the wire."""

from __future__ import annotations

from dataclasses import asdict
from typing import Literal

from pydantic import Field

from soko.core.automations import AutomationRecord, DeliveryRecord
from soko.wire.base import WireModel
from soko.wire.fields import CollectionName, UtcDatetime

Event = Literal["version_created", "alias_added"]
Status = Literal["pending", "delivered", "failed"]


class AutomationIn(WireModel):
    """A webhook on *event* of the project (or of its collection *collection*); a secret is
    made when none is given."""

    event: Event
    url: str = Field(min_length=8, max_length=2048, pattern=r"^https?://[!-~]+$")
    collection: CollectionName | None = None
    secret: str | None = Field(default=None, min_length=1, max_length=256, pattern=r"^[!-~]+$")


class AutomationPatch(WireModel):
    """A disabled automation sends nothing; its pending deliveries wait until enabled."""

    enabled: bool


class AutomationOut(WireModel):
    id: str
    entity: str
    project: str
    collection: str | None
    event: str
    url: str
    enabled: bool
    created_at: UtcDatetime
    secret: str | None = None
    """Only in the answer to the POST that made the automation."""

    @classmethod
    def of(cls, record: AutomationRecord) -> AutomationOut:
        return cls(**asdict(record))

    def to_record(self) -> AutomationRecord:
        return AutomationRecord(**self.model_dump())


class AutomationList(WireModel):
    automations: list[AutomationOut]


class DeliveryOut(WireModel):
    id: int
    automation_id: str
    event_id: str
    event: str
    status: str
    attempts: int
    next_attempt_at: UtcDatetime
    last_status_code: int | None
    last_latency_ms: float | None
    last_error: str | None
    created_at: UtcDatetime
    updated_at: UtcDatetime
    payload: str

    @classmethod
    def of(cls, record: DeliveryRecord) -> DeliveryOut:
        return cls(**asdict(record))

    def to_record(self) -> DeliveryRecord:
        return DeliveryRecord(**self.model_dump())


class DeliveryList(WireModel):
    deliveries: list[DeliveryOut]
