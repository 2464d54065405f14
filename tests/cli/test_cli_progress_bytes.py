"""Progress bars move with the bytes while one large file streams, not only when it ends:
hashing, copying, uploading and downloading, on the embedded store and through a server.

The bars are drawn in this process on a fake terminal (stderr replaced by a stream that says
it is one), with every update drawn (``REDRAW_SECONDS = 0``), and the frames are read back:
some frame must show part of the file's bytes done while no file is done yet.
"""

from __future__ import annotations

import io
import os
import re
import sys
from pathlib import Path

import pytest
from cli_helpers import CliTarget, TreeFactory

import soko
from soko.sdk import progress

SIZE = 20 * 1024 * 1024
"""Three 8 MiB chunks of a copy or a hash: the bar has two frames inside the file."""

FRAME = re.compile(
    r"(?P<word>Hashing|Copying|Uploading|Downloading)\b[^\n\r]*?"
    r"(?P<done>[\d.]+)/(?P<total>[\d.]+) MB[^\n\r]*?(?P<files>\d+)/(?P<all>\d+) files?"
)


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _frames(screen: str) -> list[tuple[str, float, float, int]]:
    """(word, MB done, MB in all, files done) of each frame drawn."""
    return [
        (m["word"], float(m["done"]), float(m["total"]), int(m["files"]))
        for m in FRAME.finditer(screen)
    ]


def _inside_the_file(frames: list[tuple[str, float, float, int]], word: str) -> list[float]:
    """The MB done that frames of *word* showed while the file was still streaming."""
    total = SIZE / 1e6
    seen = [f for f in frames if f[0] == word]
    assert seen, (word, sorted({f[0] for f in frames}))
    assert all(abs(t - total) < 0.1 for _, _, t, _ in seen), seen
    assert seen[-1][1] == pytest.approx(total, abs=0.1) and seen[-1][3] == 1, seen[-1]
    return sorted({done for _, done, _, files in seen if files == 0 and 0 < done < total})


@pytest.fixture
def screen(monkeypatch: pytest.MonkeyPatch) -> _Terminal:
    monkeypatch.setenv("SOKO_SILENT", "false")
    monkeypatch.delenv("WANDB_SILENT", raising=False)
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.setattr(progress, "REDRAW_SECONDS", 0)
    monkeypatch.setitem(progress._defaults, "transient", False)
    monkeypatch.setitem(progress._defaults, "delay", 0.0)
    return _Terminal()


@pytest.mark.parametrize("policy", ["mutable", "immutable"])
def test_bars_count_the_bytes_of_one_large_file(
    cli_target: CliTarget,
    make_tree: TreeFactory,
    screen: _Terminal,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    policy: str,
):
    folder = make_tree({"weights.bin": os.urandom(SIZE)})
    monkeypatch.setattr(sys, "stderr", screen)  # here: pytest sets its own at the call
    with soko.init(project=cli_target.project) as run:
        artifact = soko.Artifact("model", "model")
        artifact.add_dir(str(folder), policy=policy)
        run.log_artifact(artifact).wait()
    put = _frames(screen.getvalue())
    screen.truncate(0)
    soko.Api().artifact(f"{cli_target.project}/model:v0").download(root=str(tmp_path / "out"))
    got = _frames(screen.getvalue())

    assert (tmp_path / "out" / "weights.bin").stat().st_size == SIZE
    assert len(_inside_the_file(put, "Hashing")) >= 2
    # Where the bytes go after hashing: on the embedded store a mutable file is stored
    # while it is hashed (no further bar); else it is uploaded before the log returns
    # (mutable, a server) or read again by the log's upload (immutable).
    if policy == "mutable" and cli_target.kind == "embedded":
        assert {word for word, *_ in put} == {"Hashing"}, put
    else:
        assert {word for word, *_ in put} == {"Hashing", "Uploading"}, put
        assert len(_inside_the_file(put, "Uploading")) >= 2
    assert len(_inside_the_file(got, "Downloading")) >= 2


def test_the_commit_is_one_step_with_a_bar(
    cli_target: CliTarget,
    make_tree: TreeFactory,
    screen: _Terminal,
    monkeypatch: pytest.MonkeyPatch,
):
    folder = make_tree({"a.txt": b"a", "b.txt": b"b", "c/d.txt": b"d"})
    monkeypatch.setattr(sys, "stderr", screen)
    with soko.init(project=cli_target.project) as run:
        artifact = soko.Artifact("committed", "dataset")
        artifact.add_dir(str(folder))
        run.log_artifact(artifact).wait()
    frames = re.findall(r"Committing committed\b[^\n\r]*", screen.getvalue())
    # Drawn once the commit ends at the latest (the delay is 0 here), with what it did.
    assert frames and "100%" in frames[-1] and "3/3 files" in frames[-1], frames
    assert not [f for f in frames if "/3 files" in f and "3/3" not in f], frames
