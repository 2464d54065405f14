"""Automations on a running server: its background worker sends the webhooks of versions
logged through the SDK to a real receiver on a loopback port, quickly when the receiver is
up, and again when it comes back after refusing them."""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
import server_fixtures
from server_fixtures import ServerEnv, unique_project
from webhook_receiver import Receiver

import soko

pytestmark = pytest.mark.integration

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
    print(f"webhook latency, event written -> received: median {median:.0f} ms, "
          f"p95 {p95:.0f} ms, max {latencies[-1]:.0f} ms ({count} events)")
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
    print(f"{count} events, half refused at first, all received in "
          f"{time.monotonic() - started:.1f} s")
