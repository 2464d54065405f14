"""Time LocalBlobStore.put_file against `cp`, side by side, and print the ratios.

Run by hand (it writes ~5 GiB and takes a few minutes)::

    .venv/bin/python bench/store_put_bench.py [--dir /tmp/soko-bench] [--small 20000]
        [--big-gib 2] [--rounds 3] [--algorithm MD5]

Each timing includes making the bytes durable (``sync -f`` after cp, ``store.sync()``
after the puts), so neither side is credited for leaving dirty pages behind; ``sync`` runs
before every timing so one run's write-back does not land in the next one's time. The
source files are hashed beforehand, as a caller that logs an artifact has already done.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from soko.core.digests import Algorithm, Digest
from soko.storage.local import LocalBlobStore

_CHUNK = 8 * 1024 * 1024


def _hash(path: str, algorithm: Algorithm) -> Digest:
    hasher = algorithm.hasher()
    with open(path, "rb") as stream:
        while chunk := stream.read(_CHUNK):
            hasher.update(chunk)
    return Digest(algorithm, hasher.digest())


def _make_small(folder: str, count: int) -> list[str]:
    os.makedirs(folder, exist_ok=True)
    paths = []
    for index in range(count):
        path = os.path.join(folder, f"f{index:06d}.bin")
        if not os.path.exists(path):
            with open(path, "wb") as stream:
                stream.write(os.urandom(4096))
        paths.append(path)
    return paths


def _make_big(path: str, gib: float) -> None:
    size = int(gib * 1024**3)
    if os.path.exists(path) and os.path.getsize(path) == size:
        return
    with open(path, "wb") as stream:
        left = size
        while left:
            block = os.urandom(min(_CHUNK, left))
            stream.write(block)
            left -= len(block)


def _timed(prepare: Callable[[], None], run: Callable[[], None], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        prepare()
        subprocess.run(["sync"], check=True)
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", default="/tmp/soko-bench")
    parser.add_argument("--small", type=int, default=20_000)
    parser.add_argument("--big-gib", type=float, default=2.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--algorithm", default="MD5")
    args = parser.parse_args()
    algorithm = Algorithm.parse(args.algorithm)
    base = os.path.abspath(args.dir)
    small_dir = os.path.join(base, "small")
    big_path = os.path.join(base, "big.bin")
    store_dir = os.path.join(base, "store")
    copy_dir = os.path.join(base, "copy")

    small = _make_small(small_dir, args.small)
    small_digests = [_hash(p, algorithm) for p in small]
    _make_big(big_path, args.big_gib)
    big_digest = _hash(big_path, algorithm)

    def clean() -> None:
        shutil.rmtree(store_dir, ignore_errors=True)
        shutil.rmtree(copy_dir, ignore_errors=True)

    def cp_small() -> None:
        subprocess.run(["cp", "-r", small_dir, copy_dir], check=True)
        subprocess.run(["sync", "-f", copy_dir], check=True)

    def put_small_serial() -> None:
        store = LocalBlobStore(store_dir)
        for digest, path in zip(small_digests, small, strict=True):
            store.put_file(digest, path)
        store.sync()

    def put_small_threads() -> None:
        store = LocalBlobStore(store_dir)
        with ThreadPoolExecutor(args.threads) as pool:
            list(pool.map(store.put_file, small_digests, small))
        store.sync()

    def cp_big() -> None:
        os.makedirs(copy_dir, exist_ok=True)
        target = os.path.join(copy_dir, "big.bin")
        subprocess.run(["cp", big_path, target], check=True)
        subprocess.run(["sync", "-f", target], check=True)

    def put_big() -> None:
        store = LocalBlobStore(store_dir)
        store.put_file(big_digest, big_path)
        store.sync()

    rows = [
        (f"{args.small} x 4 KiB: cp -r", _timed(clean, cp_small, args.rounds)),
        (f"{args.small} x 4 KiB: put_file, 1 thread", _timed(clean, put_small_serial, args.rounds)),
        (
            f"{args.small} x 4 KiB: put_file, {args.threads} threads",
            _timed(clean, put_small_threads, args.rounds),
        ),
        (f"{args.big_gib:g} GiB: cp", _timed(clean, cp_big, args.rounds)),
        (
            f"{args.big_gib:g} GiB: put_file ({algorithm.value})",
            _timed(clean, put_big, args.rounds),
        ),
    ]
    clean()
    print(f"median of {args.rounds} rounds, durable at the end (sync), {sys.platform}")
    for name, seconds in rows:
        print(f"  {name:<42} {seconds:8.2f} s")
    print(f"  small files, put_file 1 thread / cp: {rows[1][1] / rows[0][1]:.2f}x")
    print(f"  small files, put_file {args.threads} threads / cp: {rows[2][1] / rows[0][1]:.2f}x")
    print(f"  big file, put_file / cp: {rows[4][1] / rows[3][1]:.2f}x")


if __name__ == "__main__":
    main()
