"""A run's config, summary, history and files on every backend: what ``run.config``,
``run.log``, ``run.summary``, ``run.save`` and ``run.log_code`` give reads back through
``Api().run(...)``."""

from __future__ import annotations

import math
import os
from pathlib import Path

import pytest
from backend_suite import Backend, write

import soko


def test_config_summary_and_history_read_back_through_the_api(backend: Backend) -> None:
    with soko.init(config={"lr": 0.1, "layers": [64, 32]}) as run:
        run.config.epochs = 3
        run.config.update({"optimizer": "adam"})
        for step in range(3):
            soko.log({"loss": 1.0 / (step + 1), "acc": step / 10})
        soko.log({"val": 0.5}, commit=False)
        run.summary["best_acc"] = 0.9
        run.summary.update({"note": "done"})

    public = soko.Api().run(f"{backend.entity}/{backend.project}/{run.id}")
    assert public.config == {"lr": 0.1, "layers": [64, 32], "epochs": 3, "optimizer": "adam"}
    rows = public.history(pandas=False)
    assert [(r["_step"], r.get("loss"), r.get("val")) for r in rows] == [
        (0, 1.0, None),
        (1, 0.5, None),
        (2, 1.0 / 3, None),
        (3, None, 0.5),
    ]
    assert all({"_runtime", "_timestamp"} <= set(r) for r in rows)
    summary = public.summary
    assert (summary["loss"], summary["val"], summary["best_acc"], summary.note) == (
        1.0 / 3,
        0.5,
        0.9,
        "done",
    )
    assert summary["_step"] == 3
    assert public.lastHistoryStep == 3
    assert [r["loss"] for r in public.scan_history(keys=["loss"], page_size=2)] == [
        1.0,
        0.5,
        1.0 / 3,
    ]
    assert [r["_step"] for r in public.scan_history(min_step=1, max_step=3)] == [1, 2]
    assert public.history(keys=["val"], pandas=False) == [{"val": 0.5, "_step": 3}]


def test_history_is_a_dataframe_by_default(backend: Backend) -> None:
    import pandas as pd

    with soko.init() as run:
        run.log({"x": 1})
        run.log({"x": 2})
    frame = soko.Api().run(run.id).history()
    assert isinstance(frame, pd.DataFrame)
    assert list(frame["x"]) == [1, 2]


def test_nan_and_infinity_survive_the_store(backend: Backend) -> None:
    with soko.init() as run:
        run.log({"loss": float("nan"), "grad": float("inf"), "s": "nul\x00ok"})
    public = soko.Api().run(run.id)
    (row,) = public.history(pandas=False)
    assert math.isnan(row["loss"]) and row["grad"] == math.inf and row["s"] == "nul\x00ok"
    assert math.isnan(public.summary["loss"])


def test_a_resumed_run_keeps_its_data_and_logs_on_from_its_next_step(backend: Backend) -> None:
    with soko.init(config={"lr": 0.1}) as first:
        first.log({"loss": 1.0})
        first.log({"loss": 0.9})
    with soko.init(id=first.id, resume="allow") as again:
        assert again.summary["loss"] == 0.9
        assert again.config.lr == 0.1
        again.log({"loss": 0.8})
    rows = soko.Api().run(first.id).history(pandas=False)
    assert [(r["_step"], r["loss"]) for r in rows] == [(0, 1.0), (1, 0.9), (2, 0.8)]


def test_config_of_an_unserialisable_value_and_a_bad_log_are_refused(backend: Backend) -> None:
    with soko.init() as run:
        with pytest.raises(soko.errors.ValidationError, match="JSON"):
            run.log({"model": object()})
        with pytest.raises(soko.errors.ValidationError, match="infinite"):
            run.config.update({"x": float("inf")})
        run.log({"ok": 1})
    public = soko.Api().run(run.id)
    assert [r["ok"] for r in public.history(pandas=False)] == [1]
    assert public.config == {}


def test_saved_files_and_the_run_folder_are_kept_with_the_run(backend: Backend) -> None:
    write("out/model.txt", "weights")
    write("out/notes.md", "notes")
    with soko.init() as run:
        saved = soko.save("out/*.txt")
        assert saved == [os.path.join(run.dir, "out", "model.txt")]
        Path(run.dir, "direct.txt").write_text("written in run.dir")
        write("out/model.txt", "final weights")  # a live save keeps what the file holds last
    (kept,) = [a for a in soko.Api().run(run.id).logged_artifacts() if a.type == "run_files"]
    assert kept.name == f"run-{run.id}-files:v0"
    root = kept.download(root="kept")
    assert Path(root, "out", "model.txt").read_text() == "final weights"
    assert Path(root, "direct.txt").read_text() == "written in run.dir"
    assert not Path(root, "out", "notes.md").exists()


def test_log_code_makes_a_code_artifact_as_wandb_names_it(backend: Backend) -> None:
    write("src/train.py", "print('train')")
    write("src/requirements.txt", "numpy")
    write("src/data.csv", "a,b")
    write("src/wandb/run.py", "excluded")
    with soko.init() as run:
        code = run.log_code("src")
        assert code is not None
        assert run.log_code("src", include_fn=lambda path: path.endswith(".none")) is None
        named = run.log_code(
            "src",
            name="shared-code",
            include_fn=lambda path, root: path.endswith(".csv"),
        )
    code.wait()
    assert code.type == "code"
    assert code.name.startswith(f"source-{backend.project}-")
    assert sorted(code.manifest.entries) == ["requirements.txt", "train.py"]
    assert named is not None and named.wait().name == "shared-code:v0"
    assert sorted(named.manifest.entries) == ["data.csv"]
    assert {a.type for a in soko.Api().run(run.id).logged_artifacts()} == {"code"}


def test_saved_files_restore_as_wandb_restores_them(backend: Backend, tmp_path: Path) -> None:
    write("model.h5", "weights")
    write("logs/train.log", "epoch 1")
    with soko.init() as run:
        soko.save("model.h5")
        soko.save("logs/*.log")
    public = soko.Api().run(run.id)
    assert [(f.name, f.size) for f in public.files()] == [("logs/train.log", 7), ("model.h5", 7)]
    assert [f.name for f in public.files(pattern="%.h5")] == ["model.h5"]
    with public.file("model.h5").download(root=str(tmp_path / "a")) as handle:
        assert handle.read() == "weights"
    with pytest.raises(ValueError, match="already exists"):
        public.file("model.h5").download(root=str(tmp_path / "a"))
    with soko.restore("logs/train.log", run_path="/".join(public.path), root=str(tmp_path)) as f:
        assert f.read() == "epoch 1"
    with pytest.raises(ValueError, match="not found"):
        soko.restore("nope.txt", run_path=run.id, root=str(tmp_path))
    with pytest.raises(soko.errors.NotFoundError):
        public.file("nope.txt")
