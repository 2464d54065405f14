"""A run's config, summary and history in the metadata database (service.rundata): the
bounds of core.runlog, the newest rows kept, a step written again replaced."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from soko.core import runlog
from soko.errors import NotFoundError, ValidationError
from soko.service import rundata, runs
from soko.service.store import Store


@pytest.fixture
def store(tmp_path: Path) -> Store:
    store = Store.open_local(tmp_path / "store")
    runs.start_run(store, run_id="r1", entity="e", project="p", config={"lr": 0.1})
    return store


def _rows(store: Store, **kwargs: int) -> list[dict[str, object]]:
    return [json.loads(row) for row in rundata.run_history(store, "r1", **kwargs)]


def test_nul_in_a_string_is_kept(store: Store) -> None:
    rundata.write_run_data(
        store, "r1", summary={"s": "a\x00b"}, history=[{"_step": 0, "s": "\x00"}]
    )
    assert runs.get_run(store, "r1").summary == {"s": "a\x00b"}
    assert _rows(store) == [{"_step": 0, "s": "\x00"}]


def test_config_summary_and_rows_read_back(store: Store) -> None:
    rundata.write_run_data(
        store,
        "r1",
        config={"lr": 0.2, "layers": [1, 2]},
        summary={"loss": float("nan"), "best": {"acc": 0.9}},
        history=[{"_step": 0, "loss": 1.5}, {"_step": 1, "loss": float("inf")}],
    )
    record = runs.get_run(store, "r1")
    assert record.config == {"lr": 0.2, "layers": [1, 2]}
    assert math.isnan(record.summary["loss"]) and record.summary["best"] == {"acc": 0.9}
    assert record.last_step == 1
    assert _rows(store) == [{"_step": 0, "loss": 1.5}, {"_step": 1, "loss": math.inf}]
    assert _rows(store, min_step=1) == [{"_step": 1, "loss": math.inf}]
    assert _rows(store, max_step=1) == [{"_step": 0, "loss": 1.5}]
    assert _rows(store, limit=1) == [{"_step": 0, "loss": 1.5}]


def test_what_is_not_given_is_left_as_it_is(store: Store) -> None:
    rundata.write_run_data(store, "r1", summary={"a": 1})
    rundata.write_run_data(store, "r1", history=[{"_step": 3, "x": 1}])
    record = runs.get_run(store, "r1")
    assert (record.config, record.summary, record.last_step) == ({"lr": 0.1}, {"a": 1}, 3)


def test_a_step_written_again_replaces_its_row(store: Store) -> None:
    rundata.write_run_data(store, "r1", history=[{"_step": 0, "x": 1}])
    rundata.write_run_data(store, "r1", history=[{"_step": 0, "x": 2}, {"_step": 1, "x": 3}])
    assert _rows(store) == [{"_step": 0, "x": 2}, {"_step": 1, "x": 3}]


def test_a_run_keeps_its_newest_rows(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rundata, "HISTORY_MAX_ROWS", 5)
    rundata.write_run_data(store, "r1", history=[{"_step": i} for i in range(4)])
    rundata.write_run_data(store, "r1", history=[{"_step": i} for i in range(4, 8)])
    assert [row["_step"] for row in _rows(store, limit=5)] == [3, 4, 5, 6, 7]
    assert runs.get_run(store, "r1").last_step == 7


def test_the_bound_is_ten_thousand_rows() -> None:
    assert runlog.HISTORY_MAX_ROWS == 10_000


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"history": [{"x": 1}]}, "step"),
        ({"history": [{"_step": -1}]}, "step"),
        ({"history": [{"_step": "1"}]}, "step"),
        ({"history": [{"_step": 0, "big": "x" * runlog.ROW_MAX_BYTES}]}, "bytes of JSON"),
        ({"history": [{"_step": i} for i in range(runlog.ROWS_PER_REQUEST_MAX + 1)]}, "At most"),
        ({"history": [{"_step": 0, "o": object()}]}, "JSON values"),
        ({"summary": {"big": "x" * runlog.SUMMARY_MAX_BYTES}}, "bytes of JSON"),
        ({"summary": {"half": "a\ud800b"}}, "not valid Unicode"),
        ({"history": [{"_step": 0, "\ud800": 1}]}, "not valid Unicode"),
        ({"config": {"big": "x" * runlog.CONFIG_MAX_BYTES}}, "bytes of JSON"),
        ({"config": {"inf": float("inf")}}, "infinite"),
    ],
)
def test_bad_data_is_refused_and_nothing_is_written(
    store: Store, fields: dict[str, object], message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        rundata.write_run_data(store, "r1", **fields)  # type: ignore[arg-type]
    record = runs.get_run(store, "r1")
    assert (record.config, record.summary, record.last_step) == ({"lr": 0.1}, {}, None)


def test_an_unknown_run_is_not_found(store: Store) -> None:
    with pytest.raises(NotFoundError):
        rundata.write_run_data(store, "nope", summary={})
    with pytest.raises(NotFoundError):
        rundata.run_history(store, "nope")
