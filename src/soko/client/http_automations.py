"""The automations half of :class:`soko.client.http.HttpBackend`, over ``/api/v1``."""

from __future__ import annotations

from soko.client.http_session import ApiSession
from soko.client.http_session import path_segment as _q
from soko.core.automations import AutomationRecord, DeliveryRecord
from soko.wire.automations import AutomationList, AutomationOut, DeliveryList


def _base(entity: str, project: str) -> str:
    return f"/projects/{_q(entity)}/{_q(project)}/automations"


class HttpAutomations:
    """Mixed into HttpBackend, whose ``session`` it uses."""

    session: ApiSession

    def create_automation(
        self,
        *,
        entity: str,
        project: str,
        event: str,
        url: str,
        collection: str | None,
        secret: str | None,
    ) -> AutomationRecord:
        body = {"event": event, "url": url, "collection": collection, "secret": secret}
        data = self.session.json("POST", _base(entity, project), json=body, idempotent=False)
        return AutomationOut.model_validate(data).to_record()

    def list_automations(self, entity: str, project: str) -> list[AutomationRecord]:
        data = self.session.json("GET", _base(entity, project))
        return [a.to_record() for a in AutomationList.model_validate(data).automations]

    def delete_automation(self, entity: str, project: str, automation_id: str) -> None:
        self.session.call(
            "DELETE", f"{_base(entity, project)}/{_q(automation_id)}", idempotent=False
        )

    def update_automation(
        self, entity: str, project: str, automation_id: str, *, enabled: bool
    ) -> AutomationRecord:
        data = self.session.json(
            "PATCH",
            f"{_base(entity, project)}/{_q(automation_id)}",
            json={"enabled": enabled},
            idempotent=True,
        )
        return AutomationOut.model_validate(data).to_record()

    def list_deliveries(
        self, entity: str, project: str, automation_id: str, *, status: str | None = None
    ) -> list[DeliveryRecord]:
        params = {} if status is None else {"status": status}
        data = self.session.json(
            "GET", f"{_base(entity, project)}/{_q(automation_id)}/deliveries", params=params
        )
        return [d.to_record() for d in DeliveryList.model_validate(data).deliveries]
