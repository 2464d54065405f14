"""Automations on every backend: webhooks on versions logged and linked and on aliases
added, signed with the automation's secret, sent by the server's worker (or in process by
the embedded store) to a real receiver on a loopback port, with every delivery listed."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from backend_suite import Backend

import soko
from soko.errors import NotFoundError, ValidationError

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "integration"))
from webhook_receiver import Receiver


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    running = Receiver()
    running.start()
    yield running
    running.stop()


def test_logged_versions_reach_the_webhook_signed(backend: Backend, receiver: Receiver) -> None:
    api = soko.Api()
    made = api.create_automation("version_created", receiver.url, secret="shh")
    assert made.secret == "shh" and made.project == backend.project
    logged = [backend.log("data", {"f.txt": f"content {n}"}) for n in range(3)]

    got = receiver.wait_for(3)
    assert len({r.headers["X-Soko-Event-Id"] for r in got}) == 3
    assert all(r.signed_by("shh") for r in got)
    payloads = {r.payload["version_id"]: r.payload for r in got}
    assert set(payloads) == {a.id for a in logged}
    for artifact in logged:
        payload = payloads[artifact.id]
        assert payload["event_type"] == "version_created"
        assert (payload["entity"], payload["project"], payload["collection"]) == (
            backend.entity,
            backend.project,
            "data",
        )
        assert payload["version"] == artifact.version
        assert "latest" in payload["aliases"] or payload["version"] != "v2"
    deliveries = api.deliveries(made)
    assert {d.event_id for d in deliveries} == {r.headers["X-Soko-Event-Id"] for r in got}
    assert {d.status for d in deliveries} <= {"pending", "delivered"}
    [listed] = api.automations()
    assert listed.id == made.id and listed.secret is None and listed.url == receiver.url


def test_links_and_aliases_in_a_registry(backend: Backend, receiver: Receiver) -> None:
    api = soko.Api()
    registry = "wandb-registry-model"
    created = api.create_automation("version_created", receiver.url, project=registry)
    aliased = api.create_automation("alias_added", receiver.url, project=registry)
    collection = Backend.unique("coll")
    source = backend.log("clf", {"w.bin": "weights"}, type="model")
    source.link(f"{registry}/{collection}", aliases=["staging"])

    got = receiver.wait_for(2)
    by_type = {r.payload["event_type"]: r for r in got if r.payload["collection"] == collection}
    link_event = by_type["version_created"].payload
    assert link_event["is_link"] and link_event["source_version_id"] == source.id
    assert link_event["project"] == registry and link_event["version"] == "v0"
    assert by_type["alias_added"].payload["alias"] == "staging"
    assert by_type["version_created"].signed_by(created.secret or "")
    assert by_type["alias_added"].signed_by(aliased.secret or "")
    assert {a.id for a in api.automations(registry)} >= {created.id, aliased.id}
    api.delete_automation(created)
    api.delete_automation(aliased.id, project=registry)
    assert not {a.id for a in api.automations(registry)} & {created.id, aliased.id}


def test_a_disabled_automation_sends_nothing_until_enabled(
    backend: Backend, receiver: Receiver
) -> None:
    api = soko.Api()
    made = api.create_automation("version_created", receiver.url)
    # As W&B: set the flag on the automation, then save it through the Api.
    made.enabled = False
    assert api.update_automation(made).enabled is False
    [listed] = api.automations()
    assert listed.enabled is False
    backend.log("data", {"f.txt": "while disabled"})
    # Events are written with the commit: a disabled automation matched none.
    assert api.deliveries(made) == []

    listed.enabled = True
    assert api.update_automation(listed).enabled is True
    after = backend.log("data", {"f.txt": "enabled again"})
    [got] = receiver.wait_for(1)
    assert got.payload["version_id"] == after.id
    assert [d.event_id for d in api.deliveries(made)] == [got.headers["X-Soko-Event-Id"]]
    with pytest.raises(ValidationError):
        api.update_automation(made.id)  # type: ignore[arg-type]


def test_bad_automations_are_refused(backend: Backend, receiver: Receiver) -> None:
    api = soko.Api()
    with pytest.raises(ValidationError):
        api.create_automation("deleted", receiver.url)
    with pytest.raises(ValidationError):
        api.create_automation("version_created", "ftp://example.com/hook")
    with pytest.raises(NotFoundError):
        api.delete_automation("no-such-automation")
    with pytest.raises(NotFoundError):
        api.deliveries("no-such-automation")
