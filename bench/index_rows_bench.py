"""What a row of the pack index costs to insert, by the order its digests come in.

A server stores each uploaded batch of small blobs with one commit of a row per blob in
the pack index (and one more in the project's possession rows, keyed the same way). Each
commit writes every page its rows touched, so the order of the digests across batches
decides the cost. This times 1,024-row commits into the index's own table (the schema of
:mod:`soko.storage.pack_index`, WAL, ``synchronous = FULL``) already holding ``--rows``
random digests, with the new digests in the order of their files (random), sorted a
window at a time, or all sorted; CPU microseconds a row, side by side in one run.

    python bench/index_rows_bench.py [--rows 800000] [--new 200000] [--windows 16384 65536]
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import tempfile
import time
from pathlib import Path

from soko.storage.pack_index import _SCHEMA, WAL_CHECKPOINT_PAGES

BATCH = 1024


def _index(folder: Path, rows: int) -> sqlite3.Connection:
    conn = sqlite3.connect(folder / "index.db", isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute(f"PRAGMA wal_autocheckpoint = {WAL_CHECKPOINT_PAGES}")
    conn.executescript(_SCHEMA)
    for start in range(0, rows, 32768):
        _commit(conn, [os.urandom(16) for _ in range(min(32768, rows - start))])
    return conn


def _commit(conn: sqlite3.Connection, raws: list[bytes]) -> None:
    pack = os.urandom(12).hex()
    now = time.time()
    rows = sorted(("xxh128", raw, pack, i * 1024, 1024, now) for i, raw in enumerate(raws))
    conn.execute("BEGIN IMMEDIATE")
    conn.executemany("INSERT OR IGNORE INTO packed VALUES (?, ?, ?, ?, ?, ?)", rows)
    conn.execute("COMMIT")


def cost(rows: int, new: int, window: int) -> float:
    """CPU microseconds a row of *new* digests committed 1,024 at a time, sorted a
    *window* at a time (0: not at all)."""
    with tempfile.TemporaryDirectory(prefix="soko-index-bench-") as folder:
        conn = _index(Path(folder), rows)
        raws = [os.urandom(16) for _ in range(new)]
        if window:
            raws = [r for at in range(0, new, window) for r in sorted(raws[at : at + window])]
        start = time.process_time()
        for at in range(0, new, BATCH):
            _commit(conn, raws[at : at + BATCH])
        spent = time.process_time() - start
        conn.close()
    return 1e6 * spent / new


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=800_000, help="rows in the index first")
    parser.add_argument("--new", type=int, default=200_000, help="rows then inserted")
    parser.add_argument("--windows", type=int, nargs="*", default=[16384, 65536])
    args = parser.parse_args()
    print(f"{args.new:,} rows in commits of {BATCH:,} into an index of {args.rows:,}")
    print("| order of the new digests | CPU µs a row |")
    print("| --- | ---: |")
    print(f"| of their files (random) | {cost(args.rows, args.new, 0):.1f} |", flush=True)
    for window in args.windows:
        print(f"| sorted {window:,} at a time | {cost(args.rows, args.new, window):.1f} |")
    print(f"| all sorted | {cost(args.rows, args.new, args.new):.1f} |")


if __name__ == "__main__":
    main()
