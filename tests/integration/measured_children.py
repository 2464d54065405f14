"""What the memory tests share: a folder of small files, a script run in a fresh process
that prints its own peak RSS last, and a server process's memory read from ``/proc``."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

FILE_SIZE = 1024


def make_files(root: Path, count: int) -> None:
    """*count* files of 1 KiB of distinct bytes, 1,000 to a folder."""
    block = os.urandom(FILE_SIZE)
    for i in range(count):
        if i % 1000 == 0:
            folder = root / f"d{i // 1000:03}"
            folder.mkdir(parents=True)
        fd = os.open(folder / f"f{i:06}.bin", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            os.write(fd, i.to_bytes(8, "little") + block[8:])
        finally:
            os.close(fd)


def run_measured(
    script: str, argument: Path, *, cwd: Path, env: Mapping[str, str]
) -> tuple[int, list[str]]:
    """Run *script* with *argument* in a fresh Python process, with this environment less
    its ``SOKO_`` settings plus *env*; returns the peak RSS (KiB) the script printed on its
    last line, and the lines before it."""
    child_env = {k: v for k, v in os.environ.items() if not k.startswith("SOKO_")}
    child_env.update(SOKO_SILENT="true", PYTHONPATH=os.pathsep.join(sys.path), **env)
    done = subprocess.run(
        [sys.executable, "-c", script, str(argument)],
        env=child_env,
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    *lines, peak = done.stdout.splitlines()
    return int(peak), lines


def status_kib(pid: int, field: str) -> int:
    """A memory field of ``/proc/<pid>/status`` (``VmHWM``, ``VmRSS``) in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} in the status of process {pid}")
