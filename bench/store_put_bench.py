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
import resource
import shutil
import statistics
import subprocess
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


def _cpu_seconds() -> float:
    """CPU time of this process and its finished children: unlike wall time, hardly moved
    by other processes competing for the disk."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _interleaved(
    contenders: list[tuple[str, Callable[[], None]]], prepare: Callable[[], None], rounds: int
) -> dict[str, tuple[float, float, float]]:
    """Median wall, fastest wall and median CPU seconds of each contender; within a round
    they run one after the other, so a burst of load from other processes hits them alike.
    On a busy machine the fastest round is the best estimate of the unhindered cost."""
    times: dict[str, list[tuple[float, float]]] = {name: [] for name, _ in contenders}
    for _ in range(rounds):
        for name, run in contenders:
            prepare()
            subprocess.run(["sync"], check=True)
            start, cpu = time.perf_counter(), _cpu_seconds()
            run()
            times[name].append((time.perf_counter() - start, _cpu_seconds() - cpu))
    return {
        name: (
            statistics.median(w for w, _ in values),
            min(w for w, _ in values),
            statistics.median(c for _, c in values),
        )
        for name, values in times.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", default="/tmp/soko-bench")
    parser.add_argument("--small", type=int, default=20_000)
    parser.add_argument("--big-gib", type=float, default=2.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--algorithm", default="MD5")
    parser.add_argument("--only", choices=["small", "big"])
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

    small_label = f"{args.small} x 4 KiB"
    big_label = f"{args.big_gib:g} GiB"
    results: dict[str, tuple[float, float, float]] = {}
    if args.only in (None, "small"):
        results |= _interleaved(
            [
                (f"{small_label}: cp -r", cp_small),
                (f"{small_label}: put_file, 1 thread", put_small_serial),
                (f"{small_label}: put_file, {args.threads} threads", put_small_threads),
            ],
            clean,
            args.rounds,
        )
    if args.only in (None, "big"):
        results |= _interleaved(
            [
                (f"{big_label}: cp", cp_big),
                (f"{big_label}: put_file ({algorithm.value})", put_big),
            ],
            clean,
            args.rounds,
        )
    clean()
    print(f"{args.rounds} rounds, each durable at the end (sync): median wall (fastest), CPU")
    for name, (wall, fastest, cpu) in results.items():
        print(f"  {name:<42} {wall:7.2f} s ({fastest:6.2f} s) {cpu:7.2f} s CPU")
    for label in (small_label, big_label):
        cp_times = [t for n, t in results.items() if n.startswith(f"{label}: cp")]
        for name, (wall, fastest, cpu) in results.items():
            if cp_times and name.startswith(f"{label}: put_file"):
                base_wall, base_fastest, base_cpu = cp_times[0]
                print(
                    f"  {name} / cp: {wall / base_wall:.2f}x wall "
                    f"({fastest / base_fastest:.2f}x fastest), {cpu / base_cpu:.2f}x CPU"
                )


if __name__ == "__main__":
    main()
