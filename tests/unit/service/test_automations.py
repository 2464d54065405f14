"""Automations on a real embedded store: events written with the commit (the outbox),
sent to a real HTTP receiver on a loopback port, signed, retried with back-off while it
is down, and none lost. Time is moved by handing the worker a later clock."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

from soko.client.local import LocalBackend
from soko.core.automations import ALIAS_ADDED, DELIVERED, FAILED, PENDING, VERSION_CREATED
from soko.core.digests import Digest
from soko.core.manifest import Entry, Manifest
from soko.core.requests import CommitRequest
from soko.errors import NotFoundError, ValidationError
from soko.metadata.schema import deliveries
from soko.service import automations, versions, webhooks
from soko.service.catalog import now
from soko.service.commit import commit_version
from soko.service.links import link_version
from soko.service.registries import create_registry
from soko.service.store import Store

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "integration"))
from webhook_receiver import Receiver

ENTITY = "local"
PROJECT = "proj"
SECRET = "s3cret"


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store.open_local(tmp_path / "store")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    running = Receiver()
    running.start()
    yield running
    running.stop()


def request_for(
    store: Store, content: bytes, *, name: str = "data", aliases: tuple[str, ...] = ()
) -> CommitRequest:
    digest = Digest.of_bytes(content)
    store.blobs.put_bytes(digest, content)
    manifest = Manifest.of([Entry(path="f.txt", digest=digest.b64, size=len(content))])
    return CommitRequest(
        entity=ENTITY,
        project=PROJECT,
        name=name,
        type="dataset",
        manifest=manifest,
        aliases=aliases,
    )


def log(store: Store, content: bytes, *, name: str = "data", aliases: tuple[str, ...] = ()) -> str:
    return commit_version(store, request_for(store, content, name=name, aliases=aliases)).id


def hook(store: Store, receiver: Receiver, event: str = VERSION_CREATED, **scope: str) -> str:
    scope.setdefault("entity", ENTITY)
    scope.setdefault("project", PROJECT)
    record = automations.create_automation(
        store,
        event=event,
        url=receiver.url,
        secret=SECRET,
        **scope,  # type: ignore[arg-type]
    )
    return record.id


def test_a_commit_is_delivered_signed_with_its_event(store: Store, receiver: Receiver) -> None:
    automation = hook(store, receiver)
    version_id = log(store, b"one", aliases=("best",))
    assert webhooks.drain(store) == 1
    [got] = receiver.received
    assert got.signed_by(SECRET) and not got.signed_by("other")
    payload = got.payload
    assert payload["event_type"] == VERSION_CREATED
    assert payload["event_id"] == got.headers["X-Soko-Event-Id"]
    assert (payload["entity"], payload["project"], payload["collection"]) == (
        ENTITY,
        PROJECT,
        "data",
    )
    assert payload["version"] == "v0" and payload["version_id"] == version_id
    assert payload["aliases"] == ["latest", "best"] and payload["is_link"] is False
    [delivery] = automations.list_deliveries(store, automation)
    assert delivery.status == DELIVERED and delivery.attempts == 1
    assert delivery.last_status_code == 204 and delivery.last_latency_ms is not None


def test_alias_added_fires_for_new_aliases_only(store: Store, receiver: Receiver) -> None:
    hook(store, receiver, ALIAS_ADDED)
    version_id = log(store, b"one")
    versions.update_version(store, version_id, aliases_to_set=["prod"])
    versions.update_version(store, version_id, aliases_to_set=["prod"])
    webhooks.drain(store)
    assert [(r.payload["event_type"], r.payload["alias"]) for r in receiver.received] == [
        (ALIAS_ADDED, "prod")
    ]
    assert receiver.received[0].payload["aliases"] == ["latest", "prod"]


def test_scope_is_the_project_or_one_collection(store: Store, receiver: Receiver) -> None:
    hook(store, receiver, collection="wanted")
    log(store, b"a", name="other")
    log(store, b"b", name="wanted")
    webhooks.drain(store)
    assert [r.payload["collection"] for r in receiver.received] == ["wanted"]


def test_a_link_into_a_registry_is_a_version_created(store: Store, receiver: Receiver) -> None:
    create_registry(
        store,
        "model",
        entity=ENTITY,
        organisation=None,
        visibility="organization",
        description=None,
        artifact_types=[],
    )
    home = automations_home = "local"
    assert automations_home == home
    hook(store, receiver, project="wandb-registry-model")
    version_id = log(store, b"m")
    link = link_version(
        store,
        version_id,
        entity=ENTITY,
        project="wandb-registry-model",
        registry="prod-models",
        aliases_to_add=["staging"],
    )
    link_version(
        store, version_id, entity=ENTITY, project="wandb-registry-model", registry="prod-models"
    )
    webhooks.drain(store)
    [got] = receiver.received
    assert got.payload["collection"] == "prod-models" and got.payload["is_link"] is True
    assert got.payload["version_id"] == link.id
    assert got.payload["source_version_id"] == version_id
    assert got.payload["aliases"] == ["latest", "staging"]


def test_receiver_down_then_up_loses_nothing(store: Store, receiver: Receiver) -> None:
    automation = hook(store, receiver)
    receiver.refusing = True
    log(store, b"1")
    log(store, b"2")
    assert webhooks.drain(store) == 2
    pending = automations.list_deliveries(store, automation)
    assert {d.status for d in pending} == {PENDING}
    assert {d.last_status_code for d in pending} == {503}
    # Not due yet: the first retry waits a second.
    assert webhooks.drain(store) == 0
    receiver.stop()  # now the connection is refused outright
    later = now() + timedelta(seconds=2)
    assert webhooks.drain(store, at=later) == 2
    assert {d.attempts for d in automations.list_deliveries(store, automation)} == {2}
    assert all(d.last_error for d in automations.list_deliveries(store, automation))
    receiver.refusing = False
    receiver.start()
    assert webhooks.drain(store, at=later + timedelta(seconds=4)) == 2
    assert len(receiver.event_ids()) == 2
    assert {d.status for d in automations.list_deliveries(store, automation)} == {DELIVERED}


def test_a_disabled_automation_holds_its_pending_deliveries(
    store: Store, receiver: Receiver
) -> None:
    automation = hook(store, receiver)
    log(store, b"owed before disabling")
    assert automations.set_enabled(store, automation, enabled=False).enabled is False
    log(store, b"while disabled")
    assert not webhooks.has_pending(store)
    assert webhooks.drain(store) == 0 and receiver.received == []
    [held] = automations.list_deliveries(store, automation)
    assert held.status == PENDING
    automations.set_enabled(store, automation, enabled=True)
    assert webhooks.drain(store) == 1
    assert receiver.event_ids() == {held.event_id}
    with pytest.raises(NotFoundError):
        automations.set_enabled(store, "no-such-automation", enabled=True)


def test_back_off_doubles_to_five_minutes_and_gives_up_after_a_day() -> None:
    assert [webhooks.backoff(n).total_seconds() for n in (1, 2, 3, 9, 10, 40)] == [
        1,
        2,
        4,
        256,
        300,
        300,
    ]


def test_a_delivery_fails_once_the_retry_window_passes(store: Store, receiver: Receiver) -> None:
    automation = hook(store, receiver)
    receiver.refusing = True
    log(store, b"1")
    webhooks.drain(store, at=now() + timedelta(hours=23, minutes=59, seconds=59))
    [delivery] = automations.list_deliveries(store, automation)
    assert delivery.status == FAILED and delivery.attempts == 1
    assert webhooks.drain(store, at=now() + timedelta(days=2)) == 0


def test_many_versions_with_a_flaky_receiver_all_arrive(store: Store, receiver: Receiver) -> None:
    automation = hook(store, receiver)
    # 200 in CI; SOKO_WEBHOOK_EVENTS=1000 for the long run.
    logged = int(os.environ.get("SOKO_WEBHOOK_EVENTS", "200"))
    moment = now()
    for n in range(logged):
        # The receiver refuses for one stretch in every four.
        receiver.refusing = (n // 25) % 4 == 1
        log(store, f"v{n}".encode())
        if n % 10 == 0:
            webhooks.drain(store)
    receiver.refusing = False
    # Standing a little later each time: every retry comes due.
    for step in range(1, 12):
        webhooks.drain(store, at=moment + timedelta(seconds=2**step))
    records = automations.list_deliveries(store, automation, limit=10 * logged)
    assert len(records) == logged
    print(f"{logged} events, {sum(d.attempts for d in records)} attempts, all delivered")
    assert {d.status for d in records} == {DELIVERED}
    assert receiver.event_ids() == {d.event_id for d in records}
    assert any(d.attempts > 1 for d in records)


def test_in_process_sender_delivers_after_a_commit(store: Store, receiver: Receiver) -> None:
    hook(store, receiver)
    sender = webhooks.InProcessSender(store)
    log(store, b"x")
    started = time.perf_counter()
    sender.kick()
    sender.join(10)
    assert receiver.arrived.is_set()
    print(f"in-process delivery latency: {(time.perf_counter() - started) * 1000:.1f} ms")


def test_the_server_worker_is_woken_by_a_commit_and_counts_its_attempts(
    store: Store, receiver: Receiver
) -> None:
    hook(store, receiver)
    outcomes: list[str] = []
    # A poll far away: only the wake of the commit can send the event in time.
    worker = webhooks.DeliveryWorker(
        store,
        interval=3600,
        on_error=lambda exc: None,
        on_attempt=lambda outcome, seconds: outcomes.append(outcome),
    )
    # Its first look, at start, finds nothing; then it waits for a wake.
    worker.start()
    try:
        for n in range(3):
            log(store, f"v{n}".encode())
            assert len(receiver.wait_for(n + 1, timeout=30)) == n + 1
    finally:
        worker.stop()
    assert outcomes == [webhooks.DELIVERED_NOW] * 3


def test_bad_automations_are_refused(store: Store, receiver: Receiver) -> None:
    with pytest.raises(ValidationError, match="event"):
        hook(store, receiver, "deleted")
    with pytest.raises(ValidationError, match="URL"):
        automations.create_automation(
            store, entity=ENTITY, project=PROJECT, event=VERSION_CREATED, url="ftp://x"
        )
    with pytest.raises(NotFoundError):
        automations.delete_automation(store, "nope")
    made = automations.create_automation(
        store, entity=ENTITY, project=PROJECT, event=VERSION_CREATED, url=receiver.url
    )
    assert made.secret and len(made.secret) == 64
    [listed] = automations.list_automations(store, entity=ENTITY, project=PROJECT)
    assert listed.secret is None and listed.id == made.id
    log(store, b"q")
    automations.delete_automation(store, made.id)
    assert automations.list_automations(store, entity=ENTITY, project=PROJECT) == []
    assert json.loads("{}") == {}


def test_the_embedded_store_retries_at_the_next_run_start(
    tmp_path: Path, receiver: Receiver
) -> None:
    first = LocalBackend(tmp_path / "soko")
    made = first.create_automation(
        entity=ENTITY,
        project=PROJECT,
        event=VERSION_CREATED,
        url=receiver.url,
        collection=None,
        secret=SECRET,
    )
    receiver.refusing = True
    first.commit(request_for(first.store, b"while down"))
    first.wait_for_events(10)
    [delivery] = first.list_deliveries(ENTITY, PROJECT, made.id)
    assert delivery.status == PENDING and delivery.last_status_code == 503
    # Listing deliveries sends what is due, on the sender's thread: let it finish, or it
    # may find the retry made due below and send it to the receiver still refusing.
    first.wait_for_events(10)
    # The process ends; by the next one the retry is due.
    with first.store.engine.begin() as conn:
        conn.execute(update(deliveries).values(next_attempt_at=now() - timedelta(seconds=1)))
    receiver.refusing = False
    second = LocalBackend(tmp_path / "soko")
    second.start_run(run_id="r1", entity=ENTITY, project=PROJECT)
    second.wait_for_events(10)
    [got] = receiver.received
    assert got.signed_by(SECRET) and got.headers["X-Soko-Event-Id"] == delivery.event_id
    [delivery] = second.list_deliveries(ENTITY, PROJECT, made.id)
    assert delivery.status == DELIVERED and delivery.attempts == 2
