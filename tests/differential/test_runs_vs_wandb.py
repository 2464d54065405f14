"""``run.log``, ``run.summary`` and ``run.config`` fed the same calls in the `wandb` package
(offline) and in soko give the same history rows, summary, step and config.

wandb offline writes what a run logs to its ``run-<id>.wandb`` file (W&B's record log:
32 KiB blocks of CRC-framed chunks holding protobuf ``Record`` messages); :func:`_records`
reads it back, so the rows compared are the ones wandb would upload.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import struct
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import wandb
import wandb.proto.wandb_internal_pb2 as pb
import wandb.sdk.wandb_config as wandb_config

import soko
from soko.sdk.runconfig import Config as SokoConfig

_BLOCK = 32768
_HEADER = 7  # ":W&B", a 2-byte magic number, a version byte
_FULL, _LAST = 1, 4
_TIMING = {"_timestamp", "_runtime", "_wandb"}


def _records(path: Path) -> Iterator[Any]:
    raw = path.read_bytes()
    assert raw[:4] == b":W&B"
    position, pieces = _HEADER, b""
    while position + 7 <= len(raw):
        left = _BLOCK - position % _BLOCK
        if left < 7:  # a block's tail too short for a chunk header is padding
            position += left
            continue
        _crc, length, kind = struct.unpack("<IHB", raw[position : position + 7])
        if kind == 0 and length == 0:
            return
        pieces += raw[position + 7 : position + 7 + length]
        position += 7 + length
        if kind in (_FULL, _LAST):
            record = pb.Record()
            record.ParseFromString(pieces)
            pieces = b""
            yield record


def _value(text: str) -> Any:
    return json.loads(text)


def _wandb_history(path: Path) -> list[dict[str, Any]]:
    rows = []
    for record in _records(path):
        if record.WhichOneof("record_type") == "history":
            row: dict[str, Any] = {}
            for item in record.history.item:
                # A nested dict arrives as one item per leaf, keyed by its path.
                path = [item.key] if item.key else list(item.nested_key)
                place = row
                for part in path[:-1]:
                    place = place.setdefault(part, {})
                place[path[-1]] = _value(item.value_json)
            rows.append({k: v for k, v in row.items() if k not in _TIMING})
    return rows


def _without_timing(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k not in _TIMING}


def _same(a: Any, b: Any) -> bool:
    """Equal as JSON, NaN equal to NaN, and a whole float equal to its integer (wandb's
    record log writes 2.0 as 2)."""
    return json.dumps(_numbers(a), sort_keys=True) == json.dumps(_numbers(b), sort_keys=True)


def _numbers(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _numbers(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_numbers(v) for v in value]
    return value


Calls = Callable[[Any], None]


def _steps_and_commits(run: Any) -> None:
    run.log({"a": 1})
    run.log({"b": 2}, commit=False)
    run.log({"c": 3})
    run.log({"d": 4}, step=5)
    run.log({"e": 5})
    run.log({"f": 6}, step=3)  # below the current step: dropped
    run.log({"g": 7}, step=8, commit=True)
    run.log({"g": 8}, step=8)  # 8 was committed: dropped too
    run.log({"nested": {"x": [1, 2.5, None]}, "loss": float("nan")}, commit=False)


def _explicit_summary(run: Any) -> None:
    run.log({"acc": 0.5, "loss": 2.0})
    run.summary["best"] = 0.9
    run.summary.update({"acc": 0.7})
    run.log({"loss": 1.0})


def _steps_only(run: Any) -> None:
    for step in (0, 2, 4):
        run.log({"x": step}, step=step)
    run.log({"y": 1}, commit=True)


CASES: dict[str, Calls] = {
    "steps and commits": _steps_and_commits,
    "explicit summary": _explicit_summary,
    "steps only": _steps_only,
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_history_summary_and_step_match_wandb(
    name: str, wandb_offline: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = CASES[name]
    # wandb keeps its settings in a process-wide singleton: another module of this worker
    # may have set it up with a different WANDB_DIR, so the folder is named here.
    wandb.teardown()
    run = wandb.init(project="parity", config={"lr": 0.1}, dir=str(wandb_offline))
    calls(run)
    wandb_step = run.step
    wandb_summary = {k: run.summary[k] for k in run.summary.keys() if k not in _TIMING}  # noqa: SIM118 (no __iter__ in wandb)
    run_id = run.id
    run.finish()
    wandb.teardown()  # the record log of a second run in a process is complete only then
    (log_file,) = wandb_offline.glob(f"wandb/offline-run-*-{run_id}/run-{run_id}.wandb")
    wandb_rows = _wandb_history(log_file)

    monkeypatch.setenv("SOKO_DIR", str(tmp_path / "store"))
    monkeypatch.setenv("SOKO_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("SOKO_BASE_URL", raising=False)
    mine = soko.init(project="parity", config={"lr": 0.1})
    calls(mine)
    soko_step = mine.step
    soko_summary = {k: mine.summary[k] for k in mine.summary.keys() if k not in _TIMING}  # noqa: SIM118
    mine.finish()
    public = soko.Api().run(mine.id)
    soko_rows = [_without_timing(row) for row in public.history(pandas=False, samples=10_000)]

    assert _same(soko_rows, wandb_rows)
    assert soko_step == wandb_step
    assert _same(soko_summary, wandb_summary)
    assert public.config == {"lr": 0.1}


@dataclasses.dataclass
class Point:
    x: int
    y: list[int]


class Opaque:
    def __str__(self) -> str:
        return "opaque!"


def _config_operations() -> list[tuple[str, Callable[[Any], Any]]]:
    namespace = argparse.Namespace(batch_size=8, lr=0.1)
    return [
        ("set an attribute", lambda c: setattr(c, "epochs", 3)),
        ("set an item with dashes", lambda c: c.__setitem__("--depth", 4)),
        ("update from a dict", lambda c: c.update({"a": (1, 2), "s": slice(1, 5)})),
        ("update from a namespace", lambda c: c.update(namespace)),
        ("the same value again", lambda c: c.update({"lr": 0.1})),
        ("change a value", lambda c: c.update({"lr": 0.2})),
        ("change a value as item", lambda c: c.__setitem__("epochs", 4)),
        ("change a value, allowed", lambda c: c.update({"lr": 0.2}, allow_val_change=True)),
        ("setdefaults", lambda c: c.setdefaults({"lr": 9, "fresh": "yes"})),
        ("a dataclass and an object", lambda c: c.update({"p": Point(1, [2]), "o": Opaque()})),
        ("a hidden key", lambda c: c.update({"_private": 1})),
        ("read keys", lambda c: c.keys()),
        ("read items", lambda c: c.items()),
        ("read get", lambda c: (c.get("lr"), c.get("missing"), c.get("missing", 5))),
        ("read contains", lambda c: ("lr" in c, "nope" in c, "_private" in c)),
        ("read as_dict", lambda c: c.as_dict()),
        ("read a missing attribute", lambda c: c.missing),
        ("read a missing item", lambda c: c["missing"]),
        ("dict()", lambda c: dict(c)),
    ]


def _outcome(config: Any, operation: Callable[[Any], Any]) -> tuple[str, Any]:
    try:
        result = operation(config)
    except Exception as exc:  # the class name is the comparable part
        return type(exc).__name__, None
    return "ok", result


def test_config_behaves_as_wandbs(wandb_offline: Path) -> None:
    theirs = wandb_config.Config()
    ours = SokoConfig()
    for label, operation in _config_operations():
        expected, actual = _outcome(theirs, operation), _outcome(ours, operation)
        assert _same(actual, expected), label
        assert _same(dict(ours._items), dict(theirs._items)), label


def test_nan_in_a_history_row_reads_back_as_nan(
    wandb_offline: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOKO_DIR", str(tmp_path / "store"))
    monkeypatch.delenv("SOKO_BASE_URL", raising=False)
    with soko.init(project="parity") as run:
        run.log({"loss": float("nan"), "inf": float("-inf")})
    (row,) = soko.Api().run(run.id).history(pandas=False)
    assert math.isnan(row["loss"]) and row["inf"] == -math.inf
