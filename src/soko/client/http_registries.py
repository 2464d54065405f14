"""The registry half of :class:`soko.client.http.HttpBackend`: registries of an
organisation and changes to collections, over ``/api/v1``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from soko.client.http_session import ApiSession
from soko.client.http_session import path_segment as _q
from soko.core.records import CollectionRecord, RegistryRecord
from soko.wire.records import CollectionOut
from soko.wire.registries import RegistryList, RegistryOut


def _where(entity: str, organisation: str | None) -> dict[str, str]:
    params = {"entity": entity}
    if organisation is not None:
        params["organisation"] = organisation
    return params


class HttpRegistries:
    """Mixed into HttpBackend, whose ``session`` it uses."""

    session: ApiSession

    def create_registry(
        self,
        name: str,
        *,
        entity: str,
        organisation: str | None,
        visibility: str,
        description: str | None,
        artifact_types: Sequence[str],
    ) -> RegistryRecord:
        body = {
            "name": name,
            "entity": entity,
            "organisation": organisation,
            "visibility": visibility,
            "description": description,
            "artifact_types": list(artifact_types),
        }
        data = self.session.json("POST", "/registries", json=body, idempotent=False)
        return RegistryOut.model_validate(data).to_record()

    def get_registry(self, name: str, *, entity: str, organisation: str | None) -> RegistryRecord:
        data = self.session.json(
            "GET", f"/registries/{_q(name)}", params=_where(entity, organisation)
        )
        return RegistryOut.model_validate(data).to_record()

    def list_registries(self, *, entity: str, organisation: str | None) -> list[RegistryRecord]:
        data = self.session.json("GET", "/registries", params=_where(entity, organisation))
        return [r.to_record() for r in RegistryList.model_validate(data).registries]

    def update_registry(
        self, name: str, *, entity: str, organisation: str | None, **changes: Any
    ) -> RegistryRecord:
        data = self.session.json(
            "PATCH",
            f"/registries/{_q(name)}",
            params=_where(entity, organisation),
            json=changes,
        )
        return RegistryOut.model_validate(data).to_record()

    def delete_registry(self, name: str, *, entity: str, organisation: str | None) -> None:
        self.session.call(
            "DELETE",
            f"/registries/{_q(name)}",
            params=_where(entity, organisation),
            idempotent=False,
        )

    def update_collection(
        self, entity: str, project: str, name: str, **changes: Any
    ) -> CollectionRecord:
        body = dict(changes)
        if "new_name" in body:
            body["name"] = body.pop("new_name")
        if "tags_to_set" in body:
            body["tags"] = body.pop("tags_to_set")
        data = self.session.json(
            "PATCH", f"/projects/{_q(entity)}/{_q(project)}/collections/{_q(name)}", json=body
        )
        return CollectionOut.model_validate(data).to_record()

    def delete_collection(self, entity: str, project: str, name: str) -> None:
        self.session.call(
            "DELETE",
            f"/projects/{_q(entity)}/{_q(project)}/collections/{_q(name)}",
            idempotent=False,
        )
