"""Progress bars: drawn for hashing, upload, download and verify when stderr is a terminal
(a pseudo-terminal here), never when it is not, nor with SOKO_SILENT=true."""

from __future__ import annotations

import io
import os
import pty
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from cli_helpers import RunSoko, TreeFactory, soko_executable

from soko.sdk import progress

BAR_WORDS = ("Hashing", "Copying", "Uploading", "Committing", "Downloading", "Verifying", "Reading")


def run_in_terminal(command: list[str], *, env: dict[str, str] | None = None) -> tuple[int, str]:
    """Run *command* with stdin, stdout and stderr on a pseudo-terminal; (exit code, output)."""
    master, slave = pty.openpty()
    process = subprocess.Popen(
        command,
        stdin=slave,
        stdout=slave,
        stderr=slave,
        # SOKO_SILENT=false wins over a WANDB_SILENT=true that the test run may export.
        env={
            **os.environ,
            "TERM": "xterm",
            "COLUMNS": "150",
            "SOKO_SILENT": "false",
            **(env or {}),
        },
        close_fds=True,
    )
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    code = process.wait(timeout=120)
    return code, b"".join(chunks).decode("utf-8", errors="replace")


@pytest.fixture
def folder(make_tree: TreeFactory) -> Path:
    # Larger than what a draft keeps from hashing (SERIAL_MAX): copied into the store and
    # hashed in one pass while the bar says "Hashing".
    return make_tree({f"part-{i:02}.bin": os.urandom(300_000) for i in range(20)})


def test_cli_bars_on_a_terminal(soko_env, folder: Path, tmp_path: Path):
    soko = soko_executable()
    code, output = run_in_terminal(
        [soko, "artifact", "put", str(folder), "--name", "proj/ds", "--type", "dataset"]
    )
    assert code == 0, output
    assert "Hashing" in output and "20/20 files" in output
    # policy="mutable" (put's): the files were stored while they were hashed, so the log
    # has nothing left to capture or upload: no other bar.
    assert "Copying" not in output and "Uploading" not in output
    assert "Committing ds" in output  # drawn at once by the command line, however quick
    assert "Logged local/proj/ds:v0 (20 files, 6.0 MB" in output

    code, output = run_in_terminal(
        [soko, "artifact", "get", "proj/ds", "--root", str(tmp_path / "out")]
    )
    assert code == 0, output
    assert "Downloading ds:v0" in output and "6.0/6.0 MB" in output

    code, output = run_in_terminal([soko, "verify"])
    assert code == 0, output
    assert "Verifying" in output and "21/21 blobs" in output  # 20 files + manifest

    code, output = run_in_terminal([soko, "gc"])
    assert code == 0, output
    assert "Reading manifests" in output and "1 version " in output


def test_silent_on_a_terminal(soko_env, folder: Path):
    code, output = run_in_terminal(
        [soko_executable(), "artifact", "put", str(folder), "--name", "ds", "--type", "dataset"],
        env={"SOKO_SILENT": "true"},
    )
    assert code == 0, output
    assert "Logged local/uncategorized/ds:v0" in output
    assert not any(word in output for word in BAR_WORDS), output
    code, output = run_in_terminal([soko_executable(), "verify"], env={"SOKO_SILENT": "true"})
    assert code == 0 and "Verifying" not in output


def test_quiet_when_not_a_terminal(soko_cli: RunSoko, folder: Path, tmp_path: Path):
    put = soko_cli("artifact", "put", str(folder), "--name", "ds", "--type", "dataset")
    assert put.returncode == 0
    assert put.stderr == ""
    assert put.stdout.startswith("Logged local/uncategorized/ds:v0")
    get = soko_cli("artifact", "get", "ds", "--root", str(tmp_path / "out"))
    assert get.stderr == "" and get.returncode == 0
    for command in ("verify", "gc"):
        done = soko_cli(command)
        assert not any(word in done.stdout + done.stderr for word in BAR_WORDS), command


def test_sdk_bars_on_a_terminal(soko_env, folder: Path, tmp_path: Path):
    script = textwrap.dedent(
        f"""
        import soko
        from soko.sdk import progress

        progress.configure(transient=True, delay=0.0)  # draw even quick work
        with soko.init(project="proj") as run:
            artifact = soko.Artifact("ds", "dataset")
            artifact.add_dir({str(folder)!r}, policy="immutable")  # copied when logged
            run.log_artifact(artifact).wait()
        soko.Api().artifact("proj/ds:v0").download({str(tmp_path / "out")!r})
        print("done")
        """
    )
    code, output = run_in_terminal([sys.executable, "-c", script])
    assert code == 0, output
    for word in ("Hashing", "Uploading ds", "Downloading ds:v0"):
        assert word in output, (word, output)
    assert output.rstrip().endswith("done")

    code, output = run_in_terminal(
        [sys.executable, "-c", script.replace('"ds"', '"ds2"')], env={"SOKO_SILENT": "true"}
    )
    assert code == 0, output
    assert output.strip() == "done"


# ----- the Bar itself -----------------------------------------------------------------


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_bar_waits_for_its_delay(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("SOKO_SILENT", raising=False)
    monkeypatch.delenv("WANDB_SILENT", raising=False)
    screen = _Terminal()
    monkeypatch.setattr(sys, "stderr", screen)
    with progress.progress_bar("Quick", transient=False, delay=60) as bar:
        assert bar is not None
        progress.announce(bar, 3, 300)
        bar(3, 300)
    assert screen.getvalue() == ""  # finished before the delay: nothing drawn

    with progress.progress_bar("Slow", transient=False, delay=0) as bar:
        assert bar is not None
        progress.announce(bar, 3, 3000)
        bar(1, 1000)
        bar(2, 2000)
    assert "Slow" in screen.getvalue()
    assert "3/3 files" in screen.getvalue()


def test_no_bar_when_silent_or_not_a_terminal(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    with progress.progress_bar("x") as bar:
        assert bar is None
    monkeypatch.setattr(sys, "stderr", _Terminal())
    monkeypatch.setenv("SOKO_SILENT", "true")
    with progress.progress_bar("x") as bar:
        assert bar is None
    progress.announce(None, 1, 1)  # a missing bar is fine to announce to
