"""Embedded-store benchmark: soko log/re-log/download against wandb's build and cp.

For each data set (20,000 x 4 KiB, 200 x 5 MiB, 1 x 2 GiB) and each repetition, in
alternating order:

- soko: log+commit into a fresh store (cold stat cache), re-log unchanged, log with 1% of
  the files changed, download into an empty folder, download again into the same folder;
- wandb: build the same draft (``Artifact.add_dir``, default policy, offline);
- cp: ``cp -r`` of the data folder (the goal's reference; its writes may still sit in
  the page cache when it returns);
- cp+sync: ``cp -r`` and then ``sync -f`` of the copy: a copy made durable, as soko's
  log makes its blobs durable before it commits.

Prints the median seconds of each and the ratios. Outputs are kept until the end of the
run (the VM is much slower writing many files right after deleting many).

With ``--baseline-src DIR`` (the ``src`` folder of another checkout, e.g. a git worktree of
an earlier commit) each repetition also runs the soko steps with that code, alternating
with this checkout's, both in child processes, and prints the two side by side.

    python bench/store_bench.py [--sets small,medium,large] [--repeat 3] [--workdir DIR]
        [--baseline-src DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

SETS = {
    "small": (20_000, 4 * 1024),
    "medium": (200, 5 * 1024 * 1024),
    "large": (1, 2 * 1024 * 1024 * 1024),
}


def make_data(root: Path, count: int, size: int) -> None:
    if root.exists():
        return
    rng = random.Random(count)
    for i in range(count):
        folder = root / f"d{i % 100:02}" if count > 100 else root
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / f"f{i:06}.bin", "wb") as handle:
            remaining = size
            while remaining:
                block = min(remaining, 64 * 1024 * 1024)
                handle.write(rng.randbytes(block))
                remaining -= block


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def soko_round(data: Path, work: Path, tag: str) -> dict[str, float]:
    """One repetition of every soko step, in a fresh store and cache."""
    import soko
    from soko.client import connect

    os.environ["SOKO_DIR"] = str(work / f"store-{tag}")
    os.environ["SOKO_CACHE_DIR"] = str(work / f"cache-{tag}")
    connect.reset()
    results: dict[str, float] = {}
    # The store exists before the clock starts (a user logs into an existing store): its
    # creation (database, migrations) is a one-time cost, not part of a log.
    with soko.init(project="warm-up"):
        pass
    subprocess.run(["sync"], check=True)  # what earlier steps wrote is not this log's to flush

    def log() -> None:
        with soko.init(project="bench") as run:
            artifact = soko.Artifact("data", "dataset")
            artifact.add_dir(str(data))
            run.log_artifact(artifact).wait()

    results["log"] = timed(log)
    results["relog"] = timed(log)
    files = sorted(p for p in data.rglob("*") if p.is_file())
    changed = files[: max(1, len(files) // 100)]
    for path in changed:
        with open(path, "r+b") as handle:
            handle.seek(0)
            handle.write(os.urandom(16))
    results["log_1pct"] = timed(log)

    def download() -> None:
        with soko.init(project="bench") as run:
            run.use_artifact("data:latest").download(root=str(work / f"down-{tag}"))

    results["download"] = timed(download)
    results["download_again"] = timed(download)
    connect.reset()
    return results


THIS_SRC = Path(__file__).resolve().parents[1] / "src"


def soko_round_in(src: Path, data: Path, work: Path, tag: str) -> dict[str, float]:
    """:func:`soko_round` in a child process that imports soko from *src*."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOKO_")}
    env.update(PYTHONPATH=str(src), SOKO_SILENT="true")
    command = [sys.executable, __file__, "--one-round", str(data), str(work), tag]
    out = subprocess.run(command, env=env, check=True, capture_output=True, text=True)
    results: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return results


def wandb_build(data: Path) -> float:
    """Seconds for wandb to build the same draft, in a subprocess (offline, no account)."""
    code = (
        "import time, wandb\n"
        "t = time.perf_counter()\n"
        "a = wandb.Artifact('data', 'dataset')\n"
        f"a.add_dir({str(data)!r})\n"
        "print(time.perf_counter() - t)\n"
    )
    env = dict(os.environ, WANDB_MODE="offline", WANDB_SILENT="true")
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, check=True, capture_output=True, text=True
    )
    staging = Path.home() / ".local/share/wandb/artifacts/staging"
    shutil.rmtree(staging, ignore_errors=True)
    return float(out.stdout.strip().splitlines()[-1])


def cp_copy(data: Path, dest: Path, *, durable: bool = False) -> float:
    def copy() -> None:
        subprocess.run(["cp", "-r", str(data), str(dest)], check=True)
        if durable:
            subprocess.run(["sync", "-f", str(dest)], check=True)

    subprocess.run(["sync"], check=True)  # nothing left over from the previous step
    return timed(copy)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sets", default="small,medium,large")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workdir", default=None)
    parser.add_argument("--no-wandb", action="store_true")
    parser.add_argument("--baseline-src", default=None, help="soko src folder to compare with")
    parser.add_argument("--one-round", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one_round:
        data_arg, work_arg, tag_arg = args.one_round
        print(json.dumps(soko_round(Path(data_arg), Path(work_arg), tag_arg)))
        return
    baseline = Path(args.baseline_src).resolve() if args.baseline_src else None
    base = Path(args.workdir or tempfile.mkdtemp(prefix="soko-store-bench-"))
    base.mkdir(parents=True, exist_ok=True)
    print(f"workdir {base}; {os.cpu_count()} cores; medians of {args.repeat} runs")
    try:
        for name in args.sets.split(","):
            count, size = SETS[name]
            data = base / f"data-{name}"
            make_data(data, count, size)
            runs: dict[str, list[float]] = {}
            for rep in range(args.repeat):
                order = ["soko", "cp", "cp_sync", "wandb"]
                if baseline is not None:
                    order.insert(1, "baseline")
                if rep % 2:
                    order.reverse()
                for which in order:
                    if which == "soko" and baseline is None:
                        for key, value in soko_round(data, base / name, f"{rep}").items():
                            runs.setdefault(key, []).append(value)
                    elif which == "soko":
                        done = soko_round_in(THIS_SRC, data, base / name, f"{rep}")
                        for key, value in done.items():
                            runs.setdefault(key, []).append(value)
                    elif which == "baseline":
                        assert baseline is not None
                        done = soko_round_in(baseline, data, base / name, f"base{rep}")
                        for key, value in done.items():
                            runs.setdefault(f"baseline_{key}", []).append(value)
                    elif which == "cp":
                        runs.setdefault("cp", []).append(cp_copy(data, base / name / f"cp-{rep}"))
                    elif which == "cp_sync":
                        copied = cp_copy(data, base / name / f"cps-{rep}", durable=True)
                        runs.setdefault("cp_sync", []).append(copied)
                    elif not args.no_wandb:
                        runs.setdefault("wandb_build", []).append(wandb_build(data))
            med = {k: statistics.median(v) for k, v in runs.items() if not k.startswith("_")}
            print(f"\n== {name}: {count} x {size} bytes")
            for key in (
                "log",
                "relog",
                "log_1pct",
                "download",
                "download_again",
                "cp",
                "cp_sync",
                "wandb_build",
            ):
                if key in med:
                    line = f"  {key:15} {med[key]:8.3f} s"
                    if f"baseline_{key}" in med:
                        before = med[f"baseline_{key}"]
                        ratio = med[key] / before
                        line += f"   baseline {before:8.3f} s   this/baseline {ratio:5.2f}"
                    print(line)
            cp = med["cp"]
            print(f"  log / cp             {med['log'] / cp:6.2f}x")
            print(f"  log / (cp+sync)      {med['log'] / med['cp_sync']:6.2f}x")
            print(f"  download / cp        {med['download'] / cp:6.2f}x")
            if "wandb_build" in med:
                print(f"  wandb build / soko log {med['wandb_build'] / med['log']:6.2f}x")
    finally:
        if args.workdir is None:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
