"""W&B's run calls on the embedded store: module shortcuts, ``save``'s paths, ``log_code``'s
name, ``run.dir``, the W&B environment variables and the ``disabled`` mode."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import soko
from soko import settings
from soko.errors import SokoError, ValidationError
from soko.sdk import runfiles
from soko.sdk.runconfig import ConfigError

pytestmark = pytest.mark.usefixtures("soko_env")


def _write(path: str, text: str = "x") -> Path:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)
    return target


def test_module_shortcuts_need_a_run() -> None:
    for call in (lambda: soko.log({"a": 1}), lambda: soko.save("x"), lambda: soko.config):
        with pytest.raises(SokoError, match=r"You must call soko.init\(\) before"):
            call()
    with soko.init(config={"a": 1}) as run:
        assert soko.config is run.config and soko.summary is run.summary
        soko.log({"m": 2})
        assert soko.summary["m"] == 2


def test_init_takes_an_argparse_namespace_and_strips_dashes() -> None:
    import argparse

    args = argparse.Namespace(batch_size=8, lr=0.1)
    with soko.init(config=args) as run:
        run.config["--depth"] = 3
        with pytest.raises(ConfigError, match="allow_val_change"):
            run.config.lr = 0.2
        run.config.setdefaults({"lr": 9, "seed": 1})
    assert soko.Api().run(run.id).config == {"batch_size": 8, "lr": 0.1, "depth": 3, "seed": 1}


def test_log_after_finish_is_refused() -> None:
    run = soko.init()
    run.finish()
    with pytest.raises(ValidationError, match="finished"):
        run.log({"a": 1})


def test_save_places_files_as_wandb_does(tmp_path: Path) -> None:
    _write("these/are/myfiles/a.txt")
    _write("these/are/myfiles/b.txt")
    outside = _write(str(tmp_path / "abs" / "run123" / "c.txt"))
    with soko.init() as run:
        files = Path(run.dir)
        assert soko.save("these/are/myfiles/*") == [
            str(files / "these/are/myfiles/a.txt"),
            str(files / "these/are/myfiles/b.txt"),
        ]
        assert run.save("these/are/myfiles/a.txt", base_path="these") == [
            str(files / "are/myfiles/a.txt")
        ]
        # An absolute glob without a base path keeps one folder level.
        assert run.save(str(outside.parent / "*.txt")) == [str(files / "run123/c.txt")]
        assert run.save("s3://bucket/key") == []
        assert run.save("these/are/myfiles/[ab].txt", glob=False) == []
        with pytest.raises(ValueError, match="policies"):
            run.save("these/are/myfiles/a.txt", policy="sometimes")
        with pytest.raises(ValueError, match="base path"):
            run.save("these/a.txt", base_path="elsewhere")


def test_save_now_keeps_the_bytes_of_the_call() -> None:
    source = _write("weights.bin", "first")
    with soko.init() as run:
        run.save("weights.bin", policy="now")
        source.write_text("second")
    (kept,) = soko.Api().run(run.id).logged_artifacts()
    assert Path(kept.download(root="out"), "weights.bin").read_text() == "first"


def test_run_dir_follows_init_dir_then_wandb_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with soko.init(dir=str(tmp_path / "given")) as run:
        assert run.dir.startswith(str(tmp_path / "given" / "wandb" / "run-"))
        assert run.dir.endswith(f"-{run.id}/files") and os.path.isdir(run.dir)
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "wandb-dir"))
    with soko.init() as run:
        assert run.dir.startswith(str(tmp_path / "wandb-dir" / "wandb"))
    monkeypatch.setenv("SOKO_RUN_DIR", str(tmp_path / "soko-dir"))
    with soko.init() as run:
        assert run.dir.startswith(str(tmp_path / "soko-dir" / "wandb"))
    with soko.init() as quiet:
        pass
    assert soko.Api().run(quiet.id).logged_artifacts() == []  # no folder, no files artifact


def test_the_code_artifact_is_named_as_wandb_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    _write("train.py")
    monkeypatch.setattr(sys.modules["__main__"], "__file__", "train.py", raising=False)
    assert runfiles.code_artifact_name("my proj") == "source-my_proj-train.py"
    monkeypatch.delattr(sys.modules["__main__"], "__file__", raising=False)
    assert runfiles.code_artifact_name("p") == "source-p-None"
    assert len(runfiles.code_artifact_name("p" * 200)) == 128


def test_the_wandb_variables_are_honoured_and_soko_s_win(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WANDB_PROJECT", "from-wandb")
    monkeypatch.setenv("WANDB_ENTITY", "team")
    monkeypatch.setenv("WANDB_MODE", "offline")
    loaded = settings.load()
    assert (loaded.project, loaded.entity, loaded.mode) == ("from-wandb", "team", "offline")
    monkeypatch.setenv("SOKO_PROJECT", "from-soko")
    monkeypatch.setenv("SOKO_MODE", "online")
    loaded = settings.load()
    assert (loaded.project, loaded.mode) == ("from-soko", "online")
    with soko.init() as run:
        assert (run.entity, run.project) == ("team", "from-soko")
    monkeypatch.setenv("SOKO_MODE", "sideways")
    with pytest.raises(ValidationError, match="mode must be one of"):
        settings.load()


def test_a_disabled_run_records_nothing_in_the_store(tmp_path: Path) -> None:
    _write("d.txt", "data")
    with soko.init(mode="disabled", project="p") as run:
        run.log({"loss": 1.0})
        artifact = soko.Artifact("data", "dataset")
        artifact.add_file("d.txt")
        run.log_artifact(artifact).wait()
        assert run.summary["loss"] == 1.0
        assert Path(artifact.download(root=str(tmp_path / "out")), "d.txt").exists()
    assert soko.Api().runs("p") == []
    assert not soko.Api().artifact_exists("p/data:latest")
    with pytest.raises(ValidationError, match="mode"):
        soko.init(mode="nonsense")


def test_rows_logged_without_finish_are_written_at_exit(tmp_path: Path) -> None:
    script = textwrap.dedent(
        """
        import soko
        run = soko.init(project="p", id="exitrun")
        for i in range(3):
            soko.log({"i": i})
        """
    )
    env = {**os.environ, "SOKO_DIR": os.environ["SOKO_DIR"]}
    subprocess.run([sys.executable, "-c", script], check=True, env=env, cwd=tmp_path)
    rows = soko.Api().run("exitrun").history(pandas=False)
    assert [row["i"] for row in rows] == [0, 1, 2]


def test_runs_filter_on_summary_metrics_and_config() -> None:
    with soko.init(project="p", config={"lr": 0.1}) as first:
        first.log({"acc": 1})
    with soko.init(project="p", config={"lr": 0.2}) as second:
        second.log({"acc": 2})
    api = soko.Api()
    assert [r.id for r in api.runs("p", filters={"summary_metrics.acc": 2})] == [second.id]
    assert [r.id for r in api.runs("p", filters={"config.lr": 0.1})] == [first.id]


def test_define_metric_is_accepted_and_says_what_it_does_not_do(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with soko.init() as run:
        run.define_metric("acc", summary="max", step_metric="epoch")
        run.log({"acc": 0.9})
        run.log({"acc": 0.5})
        assert run.summary["acc"] == 0.5
    assert "summary='max' is not applied" in caplog.text
