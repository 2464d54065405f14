"""Waiting on the child processes of integration tests through their pipes.

A child says how far it has got by printing a line (``ready``, ``stored``) and, where the
test must hold it there, waits for a line on its stdin: the test never guesses with a pause
how far a child has got. Every wait has a deadline, so a child that hangs fails the test
instead of blocking it.
"""

from __future__ import annotations

import contextlib
import select
import subprocess

import pytest


def read_line(process: subprocess.Popen[str], *, timeout: float, what: str) -> str:
    """The next line *process* prints on its stdout (a text pipe read by no one else).

    Fails the test when the child ends first or prints nothing within *timeout* seconds.
    The child must wait after printing the line: text it prints right after could be read
    ahead into the pipe's buffer, where the next call's ``select`` would not see it."""
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], timeout)
    if not ready:
        process.kill()
        process.wait()
        pytest.fail(f"{what}: the child printed nothing within {timeout:.0f}s")
    line = process.stdout.readline()
    if not line:
        process.wait()
        errors = process.stderr.read() if process.stderr is not None else ""
        pytest.fail(f"{what}: the child ended ({process.returncode}) first:\n{errors[-3000:]}")
    return line.strip()


def tell(process: subprocess.Popen[str], line: str) -> None:
    """Write *line* to the child's stdin; a child that has died already is left to the
    test's check of its outcome. stdin stays open: ``communicate`` closes it."""
    assert process.stdin is not None
    with contextlib.suppress(BrokenPipeError):
        process.stdin.write(line + "\n")
        process.stdin.flush()
