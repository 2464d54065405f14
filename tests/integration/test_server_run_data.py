"""The run data routes of ``soko server`` (``POST /runs/{id}/data``, ``GET /runs/{id}/history``)
on SQLite and PostgreSQL: what is written reads back, and bad input gets a 4xx that names
the problem, with nothing written."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import httpx
import pytest
from server_fixtures import SokoServer, server_on

from soko.core import runlog

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SokoServer]:
    with server_on(request.param, tmp_path_factory.mktemp(f"rundata-{request.param}")) as server:
        yield server


def _new_run(api: httpx.Client, config: dict[str, object] | None = None) -> str:
    run_id = uuid.uuid4().hex[:12]
    started = api.post(
        "/runs",
        json={"run_id": run_id, "entity": "e", "project": "p", "config": config or {}},
    )
    assert started.status_code == 200, started.text
    return run_id


def _row(step: int, **values: object) -> str:
    return json.dumps({"_step": step, **values})


def test_data_written_reads_back(server: SokoServer) -> None:
    with server.client() as api:
        run_id = _new_run(api, {"lr": 0.1})
        written = api.post(
            f"/runs/{run_id}/data",
            json={
                "config": {"lr": 0.2},
                "summary": '{"loss": NaN, "best": 0.9}',
                "history": [_row(0, loss=1.0), '{"_step": 1, "loss": Infinity}'],
            },
        )
        assert written.status_code == 204, written.text
        run = api.get(f"/runs/{run_id}").json()
        history = api.get(f"/runs/{run_id}/history", params={"min_step": 1}).json()
        limited = api.get(f"/runs/{run_id}/history", params={"limit": 1}).json()
    assert run["config"] == {"lr": 0.2}
    assert run["summary"] == '{"loss":NaN,"best":0.9}'
    assert run["last_step"] == 1
    assert history == {"rows": ['{"_step":1,"loss":Infinity}']}
    assert [json.loads(row)["_step"] for row in limited["rows"]] == [0]


@pytest.mark.parametrize(
    ("body", "mentions"),
    [
        ({"history": ["not json"]}, "not valid JSON"),
        ({"history": ["[1, 2]"]}, "JSON object"),
        ({"history": ['{"loss": 1}']}, "step"),
        ({"history": ['{"_step": -3}']}, "step"),
        ({"history": [_row(0, big="x" * runlog.ROW_MAX_BYTES)]}, "bytes"),
        ({"history": [_row(i) for i in range(runlog.ROWS_PER_REQUEST_MAX + 1)]}, "1000"),
        ({"summary": "3"}, "JSON object"),
        ({"summary": '{"s": "\\ud800"}'}, "Unicode"),
        ({"config": {"x": "\u0000"}}, "NUL"),
        ({"config": {"big": "x" * runlog.CONFIG_MAX_BYTES}}, "bytes"),
        ({"history": [], "extra": 1}, "extra"),
    ],
)
def test_bad_data_is_refused_and_nothing_is_written(
    server: SokoServer, body: dict[str, object], mentions: str
) -> None:
    with server.client() as api:
        run_id = _new_run(api)
        answer = api.post(f"/runs/{run_id}/data", json=body)
        assert 400 <= answer.status_code < 500, (answer.status_code, answer.text)
        assert mentions in answer.text, answer.text
        run = api.get(f"/runs/{run_id}").json()
        assert (run["config"], run["summary"], run["last_step"]) == ({}, "{}", None)


def test_an_oversize_body_is_413(server: SokoServer) -> None:
    rows = [_row(i, pad="x" * 60_000) for i in range(400)]  # 24 MB, over the 16 MiB limit
    with server.client() as api:
        run_id = _new_run(api)
        answer = api.post(f"/runs/{run_id}/data", json={"history": rows})
    assert answer.status_code == 413, answer.text
    assert answer.json()["error"]["code"] == "payload_too_large"


@pytest.mark.parametrize(
    "params",
    [{"min_step": -1}, {"limit": 0}, {"limit": runlog.HISTORY_MAX_ROWS + 1}, {"max_step": "x"}],
)
def test_bad_history_questions_are_4xx(server: SokoServer, params: dict[str, object]) -> None:
    with server.client() as api:
        run_id = _new_run(api)
        answer = api.get(f"/runs/{run_id}/history", params=params)
    assert 400 <= answer.status_code < 500, answer.text


def test_an_unknown_run_is_404(server: SokoServer) -> None:
    with server.client() as api:
        written = api.post("/runs/nosuchrun/data", json={"summary": "{}"})
        read = api.get("/runs/nosuchrun/history")
    assert (written.status_code, read.status_code) == (404, 404)


def test_a_viewer_may_read_but_not_write(server: SokoServer) -> None:
    viewer = server.new_user(f"viewer-{uuid.uuid4().hex[:6]}", {("e", "p"): "viewer"})
    with server.client() as api:
        run_id = _new_run(api)
        assert api.post(f"/runs/{run_id}/data", json={"history": [_row(0)]}).status_code == 204
    with server.client(viewer) as api:
        assert api.get(f"/runs/{run_id}/history").json()["rows"] == ['{"_step":0}']
        denied = api.post(f"/runs/{run_id}/data", json={"summary": "{}"})
    assert denied.status_code == 403, denied.text
