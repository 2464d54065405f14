"""``Api().create_automation`` and friends: webhooks on events of a project or registry.

A soko extension (W&B makes automations in its UI): see docs/registry.md for the events,
the payload and how to check its signature.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime

from soko.client.backend import Backend
from soko.core.automations import AutomationRecord, DeliveryRecord
from soko.errors import ValidationError


@dataclass
class Automation:
    """An automation as the SDK gives it: set :attr:`enabled` and pass it to
    :meth:`AutomationsApi.update_automation`, as W&B's ``automation.enabled = False;
    api.update_automation(automation)``."""

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

    @classmethod
    def of(cls, record: AutomationRecord) -> Automation:
        return cls(**dataclasses.asdict(record))


class AutomationsApi:
    """Mixed into :class:`soko.sdk.api.Api`."""

    _backend: Backend
    _entity: str
    _project: str

    def _where(self, project: str | None) -> tuple[str, str]:
        path = project or self._project
        parts = path.split("/")
        if len(parts) == 1:
            return self._entity, parts[0]
        if len(parts) == 2:
            return parts[0], parts[1]
        raise ValidationError(f"Expected [entity/]project, got {path!r}.")

    def create_automation(
        self,
        event: str,
        url: str,
        *,
        project: str | None = None,
        collection: str | None = None,
        secret: str | None = None,
    ) -> Automation:
        """Call the webhook *url* on *event* (``version_created`` or ``alias_added``) of
        *project* (``[entity/]project``, or a registry's ``wandb-registry-<name>``), or of
        its collection *collection* only. The record carries the signing secret (made when
        none is given) this once."""
        entity, name = self._where(project)
        return Automation.of(
            self._backend.create_automation(
                entity=entity,
                project=name,
                event=event,
                url=url,
                collection=collection,
                secret=secret,
            )
        )

    def automations(self, project: str | None = None) -> list[Automation]:
        """The automations of *project* (secrets left out)."""
        return [Automation.of(r) for r in self._backend.list_automations(*self._where(project))]

    def update_automation(self, automation: Automation) -> Automation:
        """Save what may change of *automation*: whether it is :attr:`~Automation.enabled`.
        A disabled automation matches no event, and what it had pending waits, unsent,
        until it is enabled again."""
        if not isinstance(automation, Automation):
            raise ValidationError("update_automation takes an Automation from the Api.")
        record = self._backend.update_automation(
            automation.entity, automation.project, automation.id, enabled=automation.enabled
        )
        return Automation.of(record)

    def delete_automation(
        self, automation: Automation | AutomationRecord | str, project: str | None = None
    ) -> None:
        """Remove an automation (a record, or an id of *project*'s) and its deliveries."""
        entity, name, automation_id = self._named(automation, project)
        self._backend.delete_automation(entity, name, automation_id)

    def deliveries(
        self,
        automation: Automation | AutomationRecord | str,
        project: str | None = None,
        status: str | None = None,
    ) -> list[DeliveryRecord]:
        """The deliveries of an automation, newest first, with their last attempt."""
        entity, name, automation_id = self._named(automation, project)
        return self._backend.list_deliveries(entity, name, automation_id, status=status)

    def _named(
        self, automation: Automation | AutomationRecord | str, project: str | None
    ) -> tuple[str, str, str]:
        if isinstance(automation, Automation | AutomationRecord):
            return automation.entity, automation.project, automation.id
        entity, name = self._where(project)
        return entity, name, automation
