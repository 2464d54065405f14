"""The C allocator of a server process, set for many threads and large passing buffers.

glibc's ``malloc`` gives threads that allocate at once arenas of their own (up to eight per
core), and after a large block served by a mapping of its own is freed it raises the size
from which blocks are mapped to that block's, so that the next ones come from an arena.
A server's worker threads each hold an upload batch of a megabyte at a time, and a commit
reads a manifest of up to a hundred megabytes: what they free stays in the arenas, part of
the process's resident memory, and the arenas fill unevenly. Two arenas, and blocks of
256 KiB or more always mapped (given back to the system when freed), keep the server's
peak nearer what it holds (about 20 MiB less at 200,000 files logged). Both are what
``MALLOC_ARENA_MAX`` and ``MALLOC_MMAP_THRESHOLD_`` set; a process started with either (or
with ``GLIBC_TUNABLES``) keeps its own choice.

Elsewhere (macOS, musl, Windows) there is no such ``mallopt``, or it does nothing: the
allocator is left as it is.
"""

from __future__ import annotations

import ctypes
import os
import sys

ARENAS = 2
MAPPED_FROM = 256 * 1024
"""Bytes from which a block is a mapping of its own (glibc's default starts at 128 KiB and
rises up to 32 MiB as large blocks are freed)."""

_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8
_SET_BY_USER = ("MALLOC_ARENA_MAX", "MALLOC_MMAP_THRESHOLD_", "GLIBC_TUNABLES")


def tune() -> bool:
    """Set the allocator of this process as the module says; True when it was set."""
    if not sys.platform.startswith("linux") or any(os.environ.get(n) for n in _SET_BY_USER):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    # mallopt answers 1 when it took the value (musl's does nothing and answers 0).
    arenas: int = mallopt(_M_ARENA_MAX, ARENAS)
    mapped: int = mallopt(_M_MMAP_THRESHOLD, MAPPED_FROM)
    return arenas == 1 and mapped == 1
