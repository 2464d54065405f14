"""A step that cannot count its progress (a commit) shows a bar while it runs, with the
time elapsed and no count, and what it did once it ends; nothing more when it fails."""

from __future__ import annotations

import io
import sys
import threading

import pytest

from soko.sdk import progress


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def screen(monkeypatch: pytest.MonkeyPatch) -> _Terminal:
    """A fake terminal, made stderr by each test (pytest sets its own at the call)."""
    terminal = _Terminal()
    monkeypatch.setenv("SOKO_SILENT", "false")
    monkeypatch.delenv("WANDB_SILENT", raising=False)
    monkeypatch.setenv("COLUMNS", "150")
    monkeypatch.setattr(progress, "REDRAW_SECONDS", 0)
    monkeypatch.setitem(progress._defaults, "transient", False)
    monkeypatch.setitem(progress._defaults, "delay", 0.0)
    return terminal


@pytest.fixture
def drawn(monkeypatch: pytest.MonkeyPatch) -> threading.Event:
    """Set once the bar was told to draw itself by the step's timer."""
    event = threading.Event()
    refresh = progress.Bar.refresh

    def noted(bar: progress.Bar) -> None:
        refresh(bar)
        event.set()

    monkeypatch.setattr(progress.Bar, "refresh", noted)
    return event


def test_a_step_is_drawn_while_it_runs_then_shows_what_it_did(
    screen: _Terminal, drawn: threading.Event, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stderr", screen)
    with progress.step_bar("Committing ds", items=3):
        # The step does nothing the bar can count: its timer draws it.
        assert drawn.wait(30)
        during = screen.getvalue()
    assert "Committing ds" in during and "file" not in during and "%" not in during
    final = screen.getvalue()[len(during) :]
    assert "Committing ds" in final and "100%" in final and "3/3 files" in final


def test_a_failed_step_shows_nothing_done(
    screen: _Terminal, drawn: threading.Event, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stderr", screen)
    with pytest.raises(RuntimeError), progress.step_bar("Committing ds", items=3):
        assert drawn.wait(30)
        raise RuntimeError("refused")
    assert "Committing ds" in screen.getvalue() and "files" not in screen.getvalue()


def test_no_bar_off_a_terminal(screen: _Terminal, monkeypatch: pytest.MonkeyPatch) -> None:
    pipe = io.StringIO()  # the settings of ``screen``, but not a terminal
    monkeypatch.setattr(sys, "stderr", pipe)
    with progress.step_bar("Committing ds", items=3):
        pass
    assert pipe.getvalue() == ""
