"""Automations on a running server: its background worker sends the webhooks of versions
logged through the SDK to a real receiver on a loopback port, quickly when the receiver is
up, and again when it comes back after refusing them or being down; its metrics count the
attempts."""

from __future__ import annotations

import base64
import json
import statistics
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

import httpx
import pytest
import server_fixtures
from prometheus_client.parser import text_string_to_metric_families
from server_fixtures import ServerEnv, SokoServer, unique_project
from webhook_receiver import Received, Receiver

import soko
from soko.core.digests import Algorithm, Digest

pytestmark = pytest.mark.integration

_MANIFEST_HEAD = {
    "version": 1,
    "storagePolicy": "wandb-storage-policy-v1",
    "storagePolicyConfig": {"storageLayout": "V2"},
}

soko_server = server_fixtures.soko_server
server_env = server_fixtures.server_env


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    running = Receiver()
    running.start()
    yield running
    running.stop()


def _log(project: str, count: int, folder: Path, on_each: object = None) -> list[str]:
    ids = []
    with soko.init(project=project, job_type="webhooks") as run:
        for n in range(count):
            if callable(on_each):
                on_each(n)
            path = folder / "f.txt"
            path.write_text(f"content {n}")
            artifact = soko.Artifact("data", type="dataset")
            artifact.add_file(str(path))
            ids.append(run.log_artifact(artifact).wait().id)
    return ids


def _latencies_ms(got: list[Received]) -> list[float]:
    """Event written -> first arrival, per event, sorted."""
    first: dict[str, float] = {}
    for r in got:
        event = r.headers["X-Soko-Event-Id"]
        written = datetime.fromisoformat(r.payload["timestamp"]).timestamp()
        first[event] = min(first.get(event, r.arrived_at), r.arrived_at) - written
    return sorted(seconds * 1000 for seconds in first.values())


def _attempts(url: str) -> dict[str, float]:
    """The server's ``soko_webhook_attempts_total`` by outcome."""
    counts: dict[str, float] = {}
    for family in text_string_to_metric_families(httpx.get(f"{url}/metrics").text):
        for sample in family.samples:
            if sample.name == "soko_webhook_attempts_total":
                counts[sample.labels["outcome"]] = sample.value
    return counts


def test_delivery_latency_with_the_receiver_up(
    server_env: ServerEnv, receiver: Receiver, tmp_path: Path
) -> None:
    project = unique_project("hooks")
    soko.Api().create_automation("version_created", receiver.url, project=project)
    count = 30
    _log(project, count, tmp_path)
    got = receiver.wait_for(count)
    assert len({r.headers["X-Soko-Event-Id"] for r in got}) == count
    latencies = sorted(
        (r.arrived_at - datetime.fromisoformat(r.payload["timestamp"]).timestamp()) * 1000
        for r in got
    )
    median, p95 = statistics.median(latencies), latencies[int(0.95 * (count - 1))]
    print(
        f"webhook latency, event written -> received: median {median:.0f} ms, "
        f"p95 {p95:.0f} ms, max {latencies[-1]:.0f} ms ({count} events)"
    )
    assert latencies[-1] < 5000


def test_a_receiver_that_refuses_then_accepts_gets_every_event(
    server_env: ServerEnv, receiver: Receiver, tmp_path: Path
) -> None:
    project = unique_project("hooks")
    made = soko.Api().create_automation("version_created", receiver.url, project=project)
    count = 40

    def refuse_in_the_first_half(n: int) -> None:
        receiver.refusing = n < count // 2

    started = time.monotonic()
    ids = _log(project, count, tmp_path, refuse_in_the_first_half)
    receiver.refusing = False
    got = receiver.wait_for(count, timeout=120)
    assert {r.payload["version_id"] for r in got} == set(ids)
    deliveries = soko.Api().deliveries(made, project=project)
    assert {d.event_id for d in deliveries} == {r.headers["X-Soko-Event-Id"] for r in got}
    assert any(d.attempts > 1 for d in deliveries)
    print(
        f"{count} events, half refused at first, all received in {time.monotonic() - started:.1f} s"
    )


def _commit_many(server: SokoServer, project: str, numbers: range) -> list[str]:
    """A version of ``data`` for each of *numbers*, committed over the HTTP API as any
    client may, four at a time: one file, the same bytes under a new name each time (the
    SDK's bookkeeping would make the test minutes long without exercising more of the
    server's automations)."""
    data = b"webhook test data"
    digest = Digest.of_bytes(data, Algorithm.XXH128)
    encoded = base64.b64encode(digest.raw).decode()
    where = {"entity": "local", "project": project}

    def commit(http: httpx.Client, n: int) -> str:
        contents = {f"f{n}.bin": {"digest": encoded, "size": len(data), "extra": {"alg": "XXH128"}}}
        manifest = json.dumps({**_MANIFEST_HEAD, "contents": contents}).encode()
        manifest_digest = Digest.of_bytes(manifest, Algorithm.XXH128)
        put = http.put(f"/blobs/xxh128/{manifest_digest.hex}", content=manifest, params=where)
        assert put.is_success, put.text
        body = {**where, "name": "data", "type": "dataset", "algorithm": "XXH128"}
        committed = http.post("/versions", json={**body, "manifest_blob": str(manifest_digest)})
        assert committed.status_code == 200, committed.text
        version_id: str = committed.json()["id"]
        return version_id

    with server.client() as http, ThreadPoolExecutor(4) as pool:
        assert http.put(f"/blobs/xxh128/{digest.hex}", content=data, params=where).is_success
        return list(pool.map(lambda n: commit(http, n), numbers))


def test_a_thousand_versions_with_the_receiver_down_for_a_while_lose_no_event(
    server_env: ServerEnv, receiver: Receiver
) -> None:
    project = unique_project("hooks")
    made = soko.Api().create_automation("version_created", receiver.url, project=project)
    count, down_from, up_at = 1000, 300, 600
    before = _attempts(server_env.server.url)

    started = time.monotonic()
    ids = _commit_many(server_env.server, project, range(down_from))
    # Down: its socket closed, so the worker's connections are refused.
    receiver.stop()
    ids += _commit_many(server_env.server, project, range(down_from, up_at))
    receiver.start()
    ids += _commit_many(server_env.server, project, range(up_at, count))
    assert len(set(ids)) == count
    logged_in = time.monotonic() - started
    got = receiver.wait_for(count, timeout=120)
    all_in = time.monotonic() - started

    # Every event arrived, each carrying its id (header and body agree), none lost.
    assert {r.payload["version_id"] for r in got} == set(ids)
    assert all(r.headers["X-Soko-Event-Id"] == r.payload["event_id"] for r in got)
    assert len(receiver.event_ids()) == count
    records = soko.Api().deliveries(made, project=project, status="delivered")
    assert len(records) == count
    assert {d.event_id for d in records} == receiver.event_ids()
    # The ones sent while it was down were refused first, and retried.
    assert any(d.attempts > 1 for d in records)
    after = _attempts(server_env.server.url)
    assert after.get("delivered", 0) - before.get("delivered", 0) >= count
    assert after.get("retried", 0) - before.get("retried", 0) >= 1

    first_up = set(ids[:down_from])
    latencies = _latencies_ms([r for r in got if r.payload["version_id"] in first_up])
    p95 = latencies[int(0.95 * (len(latencies) - 1))]
    print(
        f"{count} versions committed in {logged_in:.1f} s, receiver down for versions "
        f"{down_from}-{up_at - 1}; all {count} events received {all_in:.1f} s after the "
        f"first commit, in {len(got)} requests. Latency while up (first {down_from}): "
        f"median {statistics.median(latencies):.0f} ms, p95 {p95:.0f} ms"
    )
