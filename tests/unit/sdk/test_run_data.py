"""``run.log``'s step and commit rules, the summary they make, and the batches a run writes
(:mod:`soko.sdk.runhistory`), with a recording writer in place of a store."""

from __future__ import annotations

import math
from typing import Any

import pytest

from soko.core.runlog import ROW_MAX_BYTES
from soko.errors import StoreError, ValidationError
from soko.sdk import runhistory
from soko.sdk.runhistory import RunData


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Writer:
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self.fail = False

    def __call__(self, **fields: Any) -> None:
        if self.fail:
            raise StoreError("the store is away")
        self.calls.append(fields)

    @property
    def rows(self) -> list[dict[str, Any]]:
        return [row for call in self.calls for row in call.get("history", ())]


def _data(writer: Writer | None = None, clock: Clock | None = None, **kwargs: Any) -> RunData:
    return RunData(
        writer or Writer(),
        config=kwargs.get("config", {}),
        summary=kwargs.get("summary", {}),
        next_step=kwargs.get("next_step", 0),
        clock=clock or Clock(),
    )


def _steps(writer: Writer) -> list[tuple[int, dict[str, Any]]]:
    return [
        (row["_step"], {k: v for k, v in row.items() if not k.startswith("_")})
        for row in writer.rows
    ]


def test_each_log_commits_a_row_and_moves_the_step() -> None:
    writer = Writer()
    data = _data(writer)
    data.log({"loss": 1.0})
    data.log({"loss": 0.5, "acc": 0.1})
    assert data.step == 2
    data.flush(commit_pending=True)
    assert _steps(writer) == [(0, {"loss": 1.0}), (1, {"loss": 0.5, "acc": 0.1})]


def test_commit_false_merges_into_the_pending_row() -> None:
    writer = Writer()
    data = _data(writer)
    data.log({"a": 1}, commit=False)
    data.log({"b": 2}, commit=False)
    assert data.step == 0
    data.log({"c": 3})
    data.flush()
    assert _steps(writer) == [(0, {"a": 1, "b": 2, "c": 3})]


def test_an_explicit_step_stays_pending_until_a_later_log_commits_it() -> None:
    writer = Writer()
    data = _data(writer)
    data.log({"a": 1}, step=5)
    assert data.step == 5
    data.log({"b": 2})  # no step: merged into step 5 and committed
    data.log({"c": 3}, step=7)
    data.log({"d": 4}, step=8)  # a higher step commits the pending row of step 7
    data.flush(commit_pending=True)
    assert _steps(writer) == [(5, {"a": 1, "b": 2}), (7, {"c": 3}), (8, {"d": 4})]
    assert data.step == 9


def test_a_step_below_the_current_one_is_dropped_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    writer = Writer()
    data = _data(writer)
    data.log({"a": 1}, step=3, commit=True)
    data.log({"late": 1}, step=1)
    data.flush(commit_pending=True)
    assert _steps(writer) == [(3, {"a": 1})]
    assert "less than the current step 4" in caplog.text


def test_commit_true_with_a_step_commits_at_that_step() -> None:
    writer = Writer()
    data = _data(writer)
    data.log({"a": 1}, step=2, commit=True)
    data.log({"a": 2}, step=2)  # step 2 is committed and the step is 3: dropped, as in W&B
    data.flush(commit_pending=True)
    assert _steps(writer) == [(2, {"a": 1})]


def test_rows_carry_step_runtime_and_timestamp() -> None:
    writer, clock = Writer(), Clock()
    data = _data(writer, clock)
    clock.now += 2.5
    data.log({"x": 1})
    data.flush()
    (row,) = writer.rows
    assert row == {"x": 1, "_step": 0, "_timestamp": 1002.5, "_runtime": 2.5}


def test_the_summary_is_the_last_logged_value_and_explicit_sets_win_until_logged_again() -> None:
    data = _data()
    data.log({"loss": 1.0, "acc": 0.5})
    data.log({"loss": 0.2})
    assert data.summary["loss"] == 0.2
    assert data.summary.acc == 0.5
    assert data.summary["_step"] == 1
    data.summary["loss"] = 0.1
    assert data.summary["loss"] == 0.1
    data.log({"loss": 0.3})
    assert data.summary["loss"] == 0.3
    data.log({"pending": 1}, commit=False)
    assert "pending" not in data.summary


def test_nan_and_infinity_are_kept() -> None:
    writer = Writer()
    data = _data(writer)
    data.log({"loss": float("nan"), "grad": float("inf")})
    data.flush()
    (row,) = writer.rows
    assert math.isnan(row["loss"]) and row["grad"] == math.inf


def test_log_refuses_what_w_and_b_refuses() -> None:
    data = _data()
    with pytest.raises(TypeError, match="dictionary"):
        data.log([("a", 1)])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="strings"):
        data.log({1: 2})  # type: ignore[dict-item]
    with pytest.raises(ValidationError, match=r"'obj'.*JSON"):
        data.log({"obj": object()})
    with pytest.raises(ValidationError, match="step"):
        data.log({"a": 1}, step=-1)


def test_numpy_values_become_json() -> None:
    import numpy as np

    writer = Writer()
    data = _data(writer)
    data.log({"a": np.float32(0.5), "v": np.arange(3)})
    data.flush()
    assert {k: writer.rows[0][k] for k in ("a", "v")} == {"a": 0.5, "v": [0, 1, 2]}


def test_a_row_larger_than_the_bound_is_refused_and_takes_no_step() -> None:
    writer = Writer()
    data = _data(writer)
    with pytest.raises(ValidationError, match="bytes of JSON"):
        data.log({"big": "x" * ROW_MAX_BYTES})
    data.log({"small": 1})
    data.flush()
    assert _steps(writer) == [(0, {"small": 1})]


def test_log_writes_nothing_until_a_batch_is_due() -> None:
    writer, clock = Writer(), Clock()
    data = _data(writer, clock)
    for i in range(runhistory.FLUSH_ROWS - 1):
        data.log({"i": i})
    assert writer.calls == []
    data.log({"i": "last"})
    assert len(writer.rows) == runhistory.FLUSH_ROWS
    assert len(writer.calls) == 1  # rows, summary and config in one write
    data.log({"i": "after"})
    clock.now += runhistory.FLUSH_SECONDS
    data.log({"i": "later"})
    assert len(writer.rows) == runhistory.FLUSH_ROWS + 2


def test_a_flush_splits_rows_into_bounded_writes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runhistory, "FLUSH_BYTES", 1000)
    writer = Writer()
    data = _data(writer)
    for i in range(10):
        data.log({"pad": "x" * 200, "i": i}, commit=True)
    data.flush()
    assert [row["i"] for row in writer.rows] == list(range(10))
    assert len(writer.calls) > 2
    assert all(len(str(call.get("history", ""))) < 2000 for call in writer.calls)
    assert "summary" in writer.calls[-1] and writer.calls[-1]["summary"]["i"] == 9


def test_a_failed_write_loses_nothing() -> None:
    writer = Writer()
    data = _data(writer)
    data.log({"a": 1})
    writer.fail = True
    with pytest.raises(StoreError):
        data.flush()
    writer.fail = False
    data.log({"a": 2})
    data.flush()
    assert _steps(writer) == [(0, {"a": 1}), (1, {"a": 2})]


def test_config_and_summary_changes_are_written_with_the_next_batch() -> None:
    writer, clock = Writer(), Clock()
    data = _data(writer, clock, config={"lr": 0.1})
    data.config.update({"epochs": 3})
    data.summary["best"] = 1
    assert writer.calls == []
    data.flush()
    assert writer.calls == [
        {"config": {"lr": 0.1, "epochs": 3}, "summary": {"best": 1}, "history": []}
    ]
    data.flush()
    assert len(writer.calls) == 1  # nothing changed, nothing written


def test_a_resumed_run_logs_from_its_next_step() -> None:
    writer = Writer()
    data = _data(writer, next_step=42, summary={"loss": 0.4})
    assert data.summary["loss"] == 0.4
    data.log({"loss": 0.3})
    data.flush()
    assert _steps(writer) == [(42, {"loss": 0.3})]


def test_log_does_not_fail_while_the_store_is_away(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(runhistory, "FLUSH_ROWS", 2)
    monkeypatch.setattr(runhistory, "HISTORY_MAX_ROWS", 3)
    writer, clock = Writer(), Clock()
    data = _data(writer, clock)
    writer.fail = True
    for i in range(5):
        data.log({"i": i})  # the first due write fails; no retry before FLUSH_SECONDS
    assert "will retry" in caplog.text
    assert caplog.text.count("will retry") == 1
    writer.fail = False
    data.log({"i": 5})
    assert writer.calls == []  # still waiting
    clock.now += runhistory.FLUSH_SECONDS
    data.log({"i": 6})
    # What waited is written: the newest 3 rows, all the store would keep.
    assert [row["i"] for row in writer.rows] == [4, 5, 6]


def test_an_explicit_summary_value_beyond_the_bound_is_refused_and_not_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from soko.sdk import runsummary

    monkeypatch.setattr(runsummary, "SUMMARY_MAX_BYTES", 100)
    data = _data()
    data.summary["small"] = 1
    with pytest.raises(ValidationError, match="bytes of JSON"):
        data.summary["big"] = "x" * 200
    with pytest.raises(ValidationError, match="JSON values"):
        data.summary.update({"fine": 2, "model": object()})
    assert data.summary.as_dict() == {"small": 1}


def test_summary_reads_as_wandbs() -> None:
    data = _data()
    data.summary.update({"nested": {"a": 1}, "_wandb": {"runtime": 3}, "x": 2})
    assert data.summary.keys() == ["nested", "x"]
    assert data.summary.nested.a == 1
    data.summary["nested"]["b"] = 2
    assert data.summary["nested"].as_dict() == {"a": 1, "b": 2}
    with pytest.raises(KeyError):
        data.summary["missing"]
    assert not hasattr(data.summary, "missing")
    del data.summary["x"]
    assert "x" not in data.summary and data.summary.get("x", 5) == 5
