"""Pausing Python's cyclic garbage collector (the interpreter's, not the store's ``soko gc``)
around bulk work.

Building, logging or downloading 20,000 entries allocates a few hundred thousand small
objects, none of them in reference cycles; each batch of allocations starts a collection
that walks every live object, which cost a quarter of a re-log's time here. Reference
counting still frees everything at once; cycles made meanwhile are collected on the next
pass after the block.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def python_gc_paused() -> Iterator[None]:
    """Disable the cyclic collector for the block, if it was enabled.

    Nested or concurrent blocks are harmless: a block that found it disabled leaves it as
    it was, so the outermost one turns it back on.
    """
    was_enabled = gc.isenabled()
    if was_enabled:
        gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def collect_young() -> None:
    """Collect the cycles made since the last collection, in a paused block too.

    A block that sends or fetches slice after slice calls it after each: every httpx
    response is in a reference cycle with its request, which holds the request's body
    (a batch of small blobs: a megabyte), so a paused collector would keep every body
    of a million-file upload. Only the youngest generation is walked: what survives moves
    on, and the next call walks only the slice after it.
    """
    gc.collect(0)
