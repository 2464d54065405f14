"""``run.log`` in a loop: soko (embedded store) against the `wandb` package (offline).

Each side runs in a fresh process that imports its library and starts a run first, then
times N calls of ``run.log({"loss": ..., "acc": ..., "epoch": ...})`` and ``run.finish()``
apart, in wall-clock and CPU seconds (user + system of the process, all threads; wandb's
own writer is a separate process, wandb-core, whose CPU is not counted: its wall-clock
figure is the fair one). soko's figure includes the batched writes to its SQLite
database (every 500 rows); wandb's includes handing each row to wandb-core. The medians
of --repeat runs are printed, alternating the two sides.

    python bench/runlog_bench.py [--calls 20000] [--repeat 3] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

_CHILD = r"""
import json, os, resource, sys, time
side, calls = sys.argv[1], int(sys.argv[2])
if side == "soko":
    import soko as lib
else:
    import wandb as lib
run = lib.init(project="bench")
def cpu():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime
wall, used = time.perf_counter(), cpu()
for i in range(calls):
    run.log({"loss": 1.0 / (i + 1), "acc": i * 0.001, "epoch": i // 1000})
logged_wall, logged_cpu = time.perf_counter() - wall, cpu() - used
wall = time.perf_counter()
run.finish()
print(json.dumps({"log_wall": logged_wall, "log_cpu": logged_cpu,
                  "finish_wall": time.perf_counter() - wall}))
"""


def _measure(side: str, calls: int, workdir: Path) -> dict[str, float]:
    env = {
        **os.environ,
        "SOKO_DIR": str(workdir / f"soko-{os.getpid()}"),
        "SOKO_CACHE_DIR": str(workdir / "cache"),
        "WANDB_MODE": "offline",
        "WANDB_SILENT": "true",
        "WANDB_DIR": str(workdir),
    }
    env.pop("SOKO_BASE_URL", None)
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, side, str(calls)],
        env=env,
        cwd=workdir,
        check=True,
        capture_output=True,
        text=True,
    )
    figures: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="soko-runlog-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    results: dict[str, list[dict[str, float]]] = {"soko": [], "wandb": []}
    for repetition in range(args.repeat):
        order = ("soko", "wandb") if repetition % 2 == 0 else ("wandb", "soko")
        for side in order:
            results[side].append(_measure(side, args.calls, workdir))
    print(f"{args.calls} calls of run.log, median of {args.repeat}")
    print(f"{'':6} {'µs/log wall':>12} {'µs/log cpu':>11} {'finish s':>9}")
    medians = {}
    for side, runs in results.items():
        wall = statistics.median(r["log_wall"] for r in runs) / args.calls * 1e6
        cpu = statistics.median(r["log_cpu"] for r in runs) / args.calls * 1e6
        finish = statistics.median(r["finish_wall"] for r in runs)
        medians[side] = wall
        print(f"{side:6} {wall:12.1f} {cpu:11.1f} {finish:9.2f}")
    print(f"wandb / soko, wall per log: {medians['wandb'] / medians['soko']:.2f}")


if __name__ == "__main__":
    main()
