"""Progress bars for long work (hashing, upload, commit, download, verify), drawn with rich.

Only the SDK and the CLI choose a bar. The layers below take a plain callback
``(items done, bytes done)`` (:data:`soko.client.backend.Progress`); where they know the
amount of work up front they tell it through :func:`announce`, which calls
``start(items, bytes)`` on a callback that has one, such as :class:`Bar`. Bytes are
reported as they stream, chunk by chunk inside a large file (``(0, bytes)`` calls, see
:mod:`soko.core.metering`), and a file when it is done: the bar moves with the bytes.

A step that cannot count its progress (a commit: one transaction, or one request to a
server) gets :func:`step_bar`: it pulses with the time elapsed while the step runs, so a
long commit is seen as one, and shows what was done at its end.

A bar is drawn only when stderr is a terminal and ``SOKO_SILENT`` is not set; otherwise
:func:`progress_bar` yields None and nothing is printed. rich is imported only when a bar is
drawn, so ``import soko`` does not pay for it.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any, Protocol, runtime_checkable

from soko import settings as settings_module
from soko.errors import SokoError

_defaults: dict[str, Any] = {"transient": True, "delay": 0.3}

REDRAW_SECONDS = 0.1
"""A bar told of bytes hands them to rich at most this often: it is told of every megabyte
(hundreds of times a second on a fast copy, from several threads), rich's update costs
tens of microseconds under its lock, and rich draws 10 frames a second anyway. Tests set
0 to see every update drawn."""


def configure(*, transient: bool, delay: float) -> None:
    """Set how bars look from now on in this process: the SDK's bars vanish when done and
    wait *delay* seconds before drawing; the command line keeps them and draws at once."""
    _defaults.update(transient=transient, delay=delay)


@runtime_checkable
class Startable(Protocol):
    def start(self, items: int, nbytes: int | None) -> None: ...


def announce(progress: object, items: int, nbytes: int | None) -> None:
    """Tell *progress* how much work follows, when it can take that (a :class:`Bar`)."""
    if isinstance(progress, Startable):
        progress.start(items, nbytes)


def bars_enabled() -> bool:
    """Whether progress is shown: stderr is a terminal and SOKO_SILENT is not set."""
    try:
        silent = settings_module.load().silent
    except SokoError:  # a bad setting is reported by whatever uses it, not by a bar
        silent = False
    stream = sys.stderr
    return not silent and stream is not None and stream.isatty()


class Bar:
    """One rich progress bar: bytes done of the total (with speed and time left) when the
    total is known, else files done; files done are shown beside.

    Callable as a :data:`~soko.client.backend.Progress`; safe to call from many threads and
    cheap to call per chunk (see :data:`REDRAW_SECONDS`). The bar appears only once
    *delay* seconds have passed, so quick work draws nothing.
    """

    def __init__(
        self, description: str, *, transient: bool, delay: float, unit: str = "file"
    ) -> None:
        self.description = description
        self._unit = unit
        self._transient = transient
        self._delay = delay
        self._created = time.monotonic()
        self._lock = threading.Lock()
        self._items = 0
        self._bytes = 0
        self._total_items: int | None = None
        self._total_bytes: int | None = None
        self._rich: Any = None
        self._task: Any = None
        self._closed = False
        self._shown = 0.0

    @property
    def delay(self) -> float:
        """Seconds from the bar's creation before it may be drawn."""
        return self._delay

    def refresh(self) -> None:
        """Draw the bar now (once its delay has passed), though nothing was counted."""
        with self._lock:
            self._refresh()

    @property
    def counts(self) -> tuple[int, int]:
        """(files done, bytes done) so far."""
        return self._items, self._bytes

    def start(self, items: int, nbytes: int | None) -> None:
        """Add *items* files (and *nbytes* bytes, when known) to the work to do."""
        with self._lock:
            self._total_items = (self._total_items or 0) + items
            if nbytes is not None:
                self._total_bytes = (self._total_bytes or 0) + nbytes
            self._refresh()

    def complete(self, items: int) -> None:
        """Count *items* more done, and as the whole of the work left (a step's end)."""
        with self._lock:
            self._total_items = self._items + items
            self._items += items
            self._refresh()

    def __call__(self, items: int, nbytes: int) -> None:
        with self._lock:
            self._items += items
            self._bytes += nbytes
            now = time.monotonic()
            if items or now - self._shown >= REDRAW_SECONDS:
                self._shown = now
                self._refresh()

    def _refresh(self) -> None:
        if self._closed:
            return
        opening = self._rich is None
        if opening:
            if time.monotonic() - self._created < self._delay or self._total_items == 0:
                return  # quick so far, or nothing to do: draw nothing
            self._open()
        self._rich.update(
            self._task,
            completed=self._items if self._total_bytes is None else self._bytes,
            total=self._total_bytes if self._total_bytes is not None else self._total_items,
            files=self._files_text(),
            refresh=REDRAW_SECONDS == 0,
        )
        if opening:
            # Started only now, so that the first frame already shows the totals.
            self._rich.start()

    def _files_text(self) -> str:
        if self._total_items is None and not self._items:
            return ""  # a step's bar while it runs: nothing counted says nothing
        total = f"/{self._total_items}" if self._total_items is not None else ""
        counted = self._items if self._total_items is None else self._total_items
        return f"{self._items}{total} {self._unit}{'' if counted == 1 else 's'}"

    def _open(self) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TaskProgressColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        columns: list[Any] = [TextColumn("{task.description}"), BarColumn()]
        if self._total_bytes is not None:
            columns += [DownloadColumn(), TransferSpeedColumn()]
        else:
            columns += [TaskProgressColumn()]
        # Nothing to count towards (a step's bar): the time it has taken, not a time left.
        counted = self._total_bytes is not None or self._total_items is not None
        clock = TimeRemainingColumn() if counted else TimeElapsedColumn()
        columns += [TextColumn("{task.fields[files]}"), clock]
        self._rich = Progress(
            *columns,
            console=Console(stderr=True),
            transient=self._transient,
            redirect_stdout=False,
            redirect_stderr=False,
        )
        self._task = self._rich.add_task(self.description, total=None, files="")

    def close(self) -> None:
        with self._lock:
            if self._rich is not None and not self._closed:
                self._refresh()
                self._rich.stop()
            self._closed = True


@contextlib.contextmanager
def progress_bar(
    description: str,
    *,
    transient: bool | None = None,
    delay: float | None = None,
    unit: str = "file",
) -> Iterator[Bar | None]:
    """A :class:`Bar` while the block runs, or None when bars are off (see module doc);
    *transient* and *delay* default to what :func:`configure` set; *unit* names an item
    counted beside the bytes (in the singular)."""
    if not bars_enabled():
        yield None
        return
    bar = Bar(
        description,
        transient=_defaults["transient"] if transient is None else transient,
        delay=_defaults["delay"] if delay is None else delay,
        unit=unit,
    )
    try:
        yield bar
    finally:
        bar.close()


@contextlib.contextmanager
def step_bar(description: str, *, items: int, unit: str = "file") -> Iterator[None]:
    """A bar for one step whose progress cannot be counted inside (a commit): it pulses
    with the time elapsed while the block runs, drawn once the delay has passed as a
    :func:`progress_bar` is, and shows *items* done when the block ends without an error."""
    with progress_bar(description, unit=unit) as bar:
        if bar is None:
            yield
            return
        # Nothing is counted while the step runs, and a bar is drawn only when told of
        # progress: a timer tells it once the delay has passed.
        timer = threading.Timer(bar.delay, bar.refresh)
        timer.daemon = True
        timer.start()
        try:
            yield
        finally:
            timer.cancel()
        bar.complete(items)
