"""The lines W&B prints while it works (``wandb.termlog``, ``termwarn``, ``termerror``), with
``soko:`` in front of each line, on stderr.

Silenced by ``SOKO_SILENT`` or ``WANDB_SILENT``, as W&B is by the latter: the lines then go
to the ``soko`` logger (at INFO, WARNING or ERROR) instead, where ``logging`` settings (and
pytest's ``caplog``) find them. Any layer may call these functions; nothing here reads the
environment at import.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
import time
from collections.abc import Iterator

from soko import settings as settings_module
from soko.errors import SokoError

PREFIX = "soko:"
WARNING_PREFIX = "WARNING"
ERROR_PREFIX = "ERROR"

logger = logging.getLogger("soko")
_lock = threading.Lock()


def termlog(message: str = "", *, newline: bool = True, prefix: bool = True) -> None:
    """An informational line (``newline=False``: the next call continues it)."""
    _emit(message, logging.INFO, newline=newline, prefix=prefix)


def termwarn(message: str, *, newline: bool = True, prefix: bool = True) -> None:
    """A warning: ``soko: WARNING <message>``."""
    marked = "\n".join(f"{WARNING_PREFIX} {line}" for line in message.split("\n"))
    _emit(marked, logging.WARNING, newline=newline, prefix=prefix)


def termerror(message: str, *, newline: bool = True, prefix: bool = True) -> None:
    """An error that is about to be raised: ``soko: ERROR <message>``."""
    marked = "\n".join(f"{ERROR_PREFIX} {line}" for line in message.split("\n"))
    _emit(marked, logging.ERROR, newline=newline, prefix=prefix)


def silent() -> bool:
    """``SOKO_SILENT`` or ``WANDB_SILENT`` is true."""
    try:
        return settings_module.load().silent
    except SokoError:  # a bad setting is reported by whatever uses it
        return False


def _emit(text: str, level: int, *, newline: bool, prefix: bool) -> None:
    if prefix:
        text = "\n".join(f"{PREFIX} {line}" for line in text.split("\n"))
    if silent():
        logger.log(level, text.rstrip())
        return
    stream = sys.stderr
    if stream is None:
        return
    with _lock:  # lines from threads stay whole
        stream.write(text + ("\n" if newline else ""))
        stream.flush()


@contextlib.contextmanager
def timed_line(message: str) -> Iterator[None]:
    """``<message>`` now, ``Done. 1.2s`` on the same line when the block ends (W&B's
    ``TimedIf``), whether it succeeded or not."""
    termlog(message, newline=False)
    start = time.monotonic()
    try:
        yield
    finally:
        termlog(f"Done. {time.monotonic() - start:.1f}s", prefix=False)
