"""``Api().create_automation`` and friends: webhooks on events of a project or registry.

A soko extension (W&B makes automations in its UI): see docs/registry.md for the events,
the payload and how to check its signature.
"""

from __future__ import annotations

from soko.client.backend import Backend
from soko.core.automations import AutomationRecord, DeliveryRecord
from soko.errors import ValidationError


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
    ) -> AutomationRecord:
        """Call the webhook *url* on *event* (``version_created`` or ``alias_added``) of
        *project* (``[entity/]project``, or a registry's ``wandb-registry-<name>``), or of
        its collection *collection* only. The record carries the signing secret (made when
        none is given) this once."""
        entity, name = self._where(project)
        return self._backend.create_automation(
            entity=entity, project=name, event=event, url=url, collection=collection, secret=secret
        )

    def automations(self, project: str | None = None) -> list[AutomationRecord]:
        """The automations of *project* (secrets left out)."""
        return self._backend.list_automations(*self._where(project))

    def delete_automation(
        self, automation: AutomationRecord | str, project: str | None = None
    ) -> None:
        """Remove an automation (a record, or an id of *project*'s) and its deliveries."""
        entity, name, automation_id = self._named(automation, project)
        self._backend.delete_automation(entity, name, automation_id)

    def deliveries(
        self,
        automation: AutomationRecord | str,
        project: str | None = None,
        status: str | None = None,
    ) -> list[DeliveryRecord]:
        """The deliveries of an automation, newest first, with their last attempt."""
        entity, name, automation_id = self._named(automation, project)
        return self._backend.list_deliveries(entity, name, automation_id, status=status)

    def _named(
        self, automation: AutomationRecord | str, project: str | None
    ) -> tuple[str, str, str]:
        if isinstance(automation, AutomationRecord):
            return automation.entity, automation.project, automation.id
        entity, name = self._where(project)
        return entity, name, automation
