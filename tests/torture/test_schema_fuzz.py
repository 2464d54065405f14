"""schemathesis over the whole OpenAPI schema of a live server, on SQLite + a folder and on
PostgreSQL + a folder, as the server admin (the caller who reaches furthest into every
handler).

For every operation, generated requests, valid and invalid, never get a 5xx; every 4xx
carries the error body ``{"error": {"code", "message"}}``; and the server answers a health
check afterwards. The number of examples per operation comes from the suite's sizes: a few
in the bounded run, many in the full one (``SOKO_TORTURE=full``); which examples, from
the suite's seed (hypothesis is seeded with it, so a failure replays). A stateful run is
not made: the schema declares no links between operations for schemathesis to follow.

The operations are fuzzed one by one with hypothesis (``operation.as_strategy()``), not
through schemathesis's pytest plugin, whose fixture-based schemas do not run under
pytest 9.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import Any

import httpx
import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from server_fixtures import SokoServer, fresh_pg_database
from torture_support import seed, sizes

pytestmark = [pytest.mark.torture, pytest.mark.integration]

ADMIN_KEY = "soko_torture_schema_admin_" + "k3y0123456789"


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def fuzzed_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SokoServer]:
    root = tmp_path_factory.mktemp(f"schema-{request.param}")
    with contextlib.ExitStack() as stack:
        if request.param == "postgresql":
            # A database of its own: the fuzzing changes whatever the admin may change.
            db = stack.enter_context(fresh_pg_database())
        else:
            db = f"sqlite:///{root / 'meta.db'}"
        server = SokoServer(root, db=db, store=str(root / "blobs"), admin_key=ADMIN_KEY)
        stack.callback(server.stop)
        yield server


@schemathesis.serializer("application/x-soko-blobs")
def framed_blobs(ctx: Any, value: Any) -> bytes:
    """The body of a blob batch is framed bytes; the schema says nothing of their shape, so
    whatever was generated is sent as it is (bytes) or as its JSON text."""
    if isinstance(value, bytes):
        return value
    return json.dumps(value).encode()


@schemathesis.check
def error_body(ctx: Any, response: Any, case: Any) -> bool | None:
    """A refused request says why, in the API's one error shape."""
    if 400 <= response.status_code < 500 and response.status_code != 405:
        try:
            error = json.loads(response.content)["error"]
        except (ValueError, KeyError, TypeError):
            raise AssertionError(f"a {response.status_code} without the error body") from None
        if not (isinstance(error, dict) and error.get("code") and error.get("message")):
            raise AssertionError(f"a {response.status_code} with a bad error body: {error}")
    return None


def _fuzz(operation: Any, server: SokoServer, examples: int, sent: list[int]) -> None:
    """Run *examples* generated cases of *operation*, counting the requests in *sent*."""

    @given(case=operation.as_strategy())
    @hypothesis.seed(seed())
    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.explicit, Phase.generate],
    )
    def run(case: Any) -> None:
        sent[0] += 1
        response = case.call(headers={"Authorization": f"Bearer {ADMIN_KEY}"}, timeout=60)
        case.validate_response(response, checks=[not_a_server_error, error_body])
        assert server.process.poll() is None, "the server died"

    run()


def test_no_generated_request_makes_the_server_fail(fuzzed_server: SokoServer) -> None:
    schema = schemathesis.openapi.from_url(f"{fuzzed_server.url}/api/v1/openapi.json")
    schema.config.update(base_url=fuzzed_server.url)
    failures: list[str] = []
    sent = [0]
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        try:
            _fuzz(operation, fuzzed_server, sizes().schema_examples, sent)
        # Every operation is fuzzed and the failures reported together; schemathesis raises
        # its findings as a BaseExceptionGroup.
        except (Exception, BaseExceptionGroup) as exc:
            failures.append(f"{operation.label}: {type(exc).__name__}: {str(exc)[:2000]}")
    assert httpx.get(f"{fuzzed_server.url}/api/v1/health").status_code == 200
    print(f"torture figures: schemathesis, {operations} operations, {sent[0]} requests")
    assert not failures, "\n\n".join(failures)
