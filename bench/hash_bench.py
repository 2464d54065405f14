"""Hashing a draft: soko against the `wandb` package on the same data.

Builds the same draft artifact from (a) 20,000 files of 4 KiB (``add_dir``) and (b) one
2 GiB file (``add_file``) with:

- soko, default settings (XXH128, ``policy="mutable"``, which captures the files' bytes in
  the store at add time), with ``digest_algorithm="MD5"``, and with ``policy="immutable"``
  (hashing only);
- wandb 0.31.0 (offline), default settings (MD5, ``policy="mutable"``, which copies every
  file into its staging folder), and with ``policy="immutable"``.

Every measurement runs in a fresh process that imports the library first and times only
``Artifact(...)`` + ``add_dir``/``add_file``, in wall-clock and in CPU seconds (user +
system, all threads: less sensitive to other work on the host). soko gets a fresh, empty
stat cache and store each run, so that it really hashes and copies; wandb's staging folder
is emptied after each run. The data is generated once under --workdir and kept until the
end; the commands run in an order that alternates between repetitions, and the median of
--repeat runs is printed, with the ratio of wandb's figures to each one. The soko and wandb
MD5 digests (and soko's XXH128 ones) are checked to be equal, so all did the same work.

    python bench/hash_bench.py [--workdir DIR] [--repeat 3] [--small-only] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

KIB = 1024
MIB = 1024 * KIB
GIB = 1024 * MIB


@dataclass(frozen=True)
class Case:
    key: str
    title: str
    files: int
    size: int


@dataclass(frozen=True)
class Command:
    key: str
    title: str
    tool: str  # "soko" or "wandb"
    algorithm: str
    policy: str


COMMANDS = [
    Command("soko", "soko (default: XXH128, mutable)", "soko", "XXH128", "mutable"),
    Command("soko-md5", "soko (MD5, mutable)", "soko", "MD5", "mutable"),
    Command("soko-immutable", 'soko (XXH128, policy="immutable")', "soko", "XXH128", "immutable"),
    Command("wandb", "wandb (default: MD5, mutable)", "wandb", "MD5", "mutable"),
    Command("wandb-immutable", 'wandb (policy="immutable")', "wandb", "MD5", "immutable"),
]


# ----- data ---------------------------------------------------------------------------


def make_case_data(root: Path, case: Case) -> Path:
    """Write the files of *case* under *root* once; a marker says they are complete."""
    folder = root / case.key
    marker = root / f"{case.key}.done"
    if marker.exists():
        return folder
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    block = os.urandom(min(case.size, 16 * MIB))
    for index in range(case.files):
        # 100 files per folder, as a data set on disk usually is.
        parent = folder / f"d{index // 100:04}" if case.files > 1 else folder
        parent.mkdir(exist_ok=True)
        with open(parent / f"f{index:06}.bin", "wb") as handle:
            handle.write(index.to_bytes(8, "little"))  # no two files alike
            remaining = case.size - 8
            while remaining > 0:
                chunk = block[: min(remaining, len(block))]
                handle.write(chunk)
                remaining -= len(chunk)
    marker.write_text("ok")
    return folder


# ----- one measured run (in its own process) ------------------------------------------


def worker(args: argparse.Namespace) -> None:
    target = Path(args.target)
    if args.tool == "soko":
        import soko as lib
    else:
        import wandb as lib

    def build() -> object:
        if args.tool == "soko":
            art = lib.Artifact("bench", "dataset", digest_algorithm=args.algorithm)
        else:
            art = lib.Artifact("bench", "dataset")
        if target.is_dir():
            art.add_dir(str(target), policy=args.policy)
        else:
            art.add_file(str(target), policy=args.policy)
        return art

    cpu_start = _cpu_seconds()
    start = time.perf_counter()
    art = build()
    seconds = time.perf_counter() - start
    cpu = _cpu_seconds() - cpu_start
    manifest = art.manifest  # type: ignore[attr-defined]
    digest = art.digest if args.tool == "soko" else manifest.digest()  # type: ignore[attr-defined]
    count = len(manifest.entries)
    print(json.dumps({"seconds": seconds, "cpu": cpu, "digest": digest, "entries": count}))


def _cpu_seconds() -> float:
    """User + system CPU time of this process, all threads (less sensitive to a busy host)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_once(command: Command, target: Path, work: Path, run_id: str) -> dict[str, object]:
    env = dict(os.environ)
    state = work / "state" / run_id
    env.update(
        WANDB_MODE="offline",
        WANDB_SILENT="true",
        WANDB_DATA_DIR=str(work / "wandb-data"),
        WANDB_CACHE_DIR=str(work / "wandb-cache"),
        WANDB_DIR=str(work / "wandb-dir"),
        SOKO_DIR=str(state / "store"),
        SOKO_CACHE_DIR=str(state / "cache"),
        SOKO_SILENT="true",
    )
    argv = [
        sys.executable,
        __file__,
        "--worker",
        command.tool,
        command.algorithm,
        command.policy,
        str(target),
    ]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{command.title} failed:\n{done.stderr[-4000:]}")
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    # wandb's mutable policy leaves a copy of every file in its staging folder.
    shutil.rmtree(work / "wandb-data" / "artifacts" / "staging", ignore_errors=True)
    return result


# ----- the comparison -----------------------------------------------------------------


Timings = dict[str, dict[str, list[float]]]  # command -> {"seconds": [...], "cpu": [...]}


def measure(case: Case, target: Path, work: Path, repeat: int) -> Timings:
    times: Timings = {c.key: {"seconds": [], "cpu": []} for c in COMMANDS}
    digests: dict[str, set[str]] = {c.key: set() for c in COMMANDS}
    for round_index in range(repeat):
        # Alternate the order, so that no command always runs first (cold) or last.
        order = COMMANDS if round_index % 2 == 0 else list(reversed(COMMANDS))
        for command in order:
            result = run_once(command, target, work, f"{case.key}-{command.key}-{round_index}")
            assert result["entries"] == case.files, result
            for field in ("seconds", "cpu"):
                times[command.key][field].append(float(str(result[field])))
            digests[command.key].add(str(result["digest"]))
            print(
                f"  {case.key} run {round_index + 1}/{repeat} {command.title:36} "
                f"{float(str(result['seconds'])):8.3f} s  (CPU {float(str(result['cpu'])):.3f} s)",
                flush=True,
            )
    md5 = digests["soko-md5"] | digests["wandb"] | digests["wandb-immutable"]
    if len(md5) != 1:
        raise SystemExit(f"soko and wandb disagree on the MD5 digest of {case.key}: {md5}")
    if len(digests["soko"] | digests["soko-immutable"]) != 1:
        raise SystemExit(f"soko's XXH128 digests of {case.key} differ between runs")
    return times


def report(results: list[tuple[Case, Timings]], repeat: int) -> str:
    lines = [
        "| data | command | wall s | wandb default / this (wall) "
        "| CPU s | wandb default / this (CPU) | wandb immutable / this (wall) |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for case, times in results:
        wall = {key: statistics.median(t["seconds"]) for key, t in times.items()}
        cpu = {key: statistics.median(t["cpu"]) for key, t in times.items()}
        for command in COMMANDS:
            key = command.key
            lines.append(
                f"| {case.title} | {command.title} | {wall[key]:.3f} "
                f"| {wall['wandb'] / wall[key]:.1f}x | {cpu[key]:.3f} "
                f"| {cpu['wandb'] / cpu[key]:.1f}x | {wall['wandb-immutable'] / wall[key]:.1f}x |"
            )
    lines.append("")
    lines.append(f"Medians of {repeat} runs each.")
    return "\n".join(lines)


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import wandb

    import soko

    return (
        f"{os.cpu_count()} cores ({cpu}), Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}, soko {soko.__version__}, "
        f"wandb {wandb.__version__}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", help="where data and outputs go (default: a temp dir)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each command")
    parser.add_argument("--small-only", action="store_true", help="only the many-files case")
    parser.add_argument("--quick", action="store_true", help="small sizes, one run")
    parser.add_argument("--worker", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        tool, algorithm, policy, target = args.worker
        worker(argparse.Namespace(tool=tool, algorithm=algorithm, policy=policy, target=target))
        return

    cases = [
        Case("small", "20,000 x 4 KiB", 20_000, 4 * KIB),
        Case("large", "1 x 2 GiB", 1, 2 * GIB),
    ]
    repeat = args.repeat
    if args.quick:
        cases = [Case("quick-small", "2,000 x 4 KiB", 2_000, 4 * KIB)] + (
            [] if args.small_only else [Case("quick-large", "1 x 128 MiB", 1, 128 * MIB)]
        )
        repeat = 1 if args.repeat == 3 else args.repeat
    elif args.small_only:
        cases = cases[:1]

    own_workdir = args.workdir is None
    work = Path(args.workdir or tempfile.mkdtemp(prefix="soko-hash-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"workdir: {work}")
    print(f"machine: {machine()}")
    try:
        results = []
        for case in cases:
            print(f"generating {case.title} ...", flush=True)
            target = make_case_data(work / "data", case)
            if case.files == 1:
                target = next(p for p in target.rglob("*") if p.is_file())
            results.append((case, measure(case, target, work, repeat)))
        print()
        print(report(results, repeat))
    finally:
        shutil.rmtree(work / "state", ignore_errors=True)
        shutil.rmtree(work / "wandb-data" / "artifacts" / "staging", ignore_errors=True)
        if own_workdir:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
