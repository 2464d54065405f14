"""What the torture tests share: their sizes, their seed, and the content they write.

Sizes come from one place, ``SOKO_TORTURE`` in the environment: unset (or ``bounded``) is
the bounded size that CI runs with every ``pytest``; ``full`` is the full size, run by
hand with ``SOKO_TORTURE=full .venv/bin/python -m pytest tests/torture``.

Everything a test writes is derived from ``SOKO_TORTURE_SEED`` (a fixed default) and a
label, so that the checking side regenerates the bytes it expects instead of trusting what
a killed writer said; the seed is printed with every failure so that a run can be
replayed. This module is imported by the test processes and by the children they start
(as a sibling module of their scripts), so it imports nothing of soko.
"""

from __future__ import annotations

import hashlib
import os
import random
from dataclasses import dataclass
from pathlib import Path

TORTURE_ENV = "SOKO_TORTURE"
SEED_ENV = "SOKO_TORTURE_SEED"
DEFAULT_SEED = 20_260_713
HERE = Path(__file__).resolve().parent
TESTS = HERE.parent


@dataclass(frozen=True)
class Sizes:
    """How hard each torture test pushes; the two instances below are the only sizes."""

    name: str
    kills: int
    """SIGKILLs of the logging child (test_kill_while_logging)."""
    kill_delay_max: float
    """The longest random delay, in seconds, between a child's start and its kill."""
    writers_versions: int
    """Versions each of the 16 concurrent writers logs."""
    cloud_writers_versions: int
    """Versions each of the 8 writers logs through two servers on PostgreSQL + S3."""
    schema_examples: int
    """Examples schemathesis generates per API operation."""

    @property
    def full(self) -> bool:
        return self.name == "full"


BOUNDED = Sizes(
    name="bounded",
    kills=20,
    kill_delay_max=0.5,
    writers_versions=3,
    cloud_writers_versions=3,
    schema_examples=3,
)
FULL = Sizes(
    name="full",
    kills=200,
    kill_delay_max=0.5,
    writers_versions=20,
    cloud_writers_versions=20,
    schema_examples=200,
)


def sizes() -> Sizes:
    mode = os.environ.get(TORTURE_ENV, "").strip().lower()
    if mode in ("", "bounded", "0", "false"):
        return BOUNDED
    if mode in ("full", "1", "true"):
        return FULL
    raise ValueError(f"{TORTURE_ENV} must be 'full' or 'bounded', not {mode!r}")


def seed() -> int:
    text = os.environ.get(SEED_ENV, "").strip()
    return int(text) if text else DEFAULT_SEED


def replay_hint() -> str:
    return f"replay with {SEED_ENV}={seed()} {TORTURE_ENV}={sizes().name}"


# ----- content ------------------------------------------------------------------------


def content(seed_value: int, label: str, size: int) -> bytes:
    """*size* bytes that only (*seed_value*, *label*) determine."""
    rng = random.Random(f"{seed_value}:{label}")
    return rng.randbytes(size)


def write_files(folder: Path, files: dict[str, bytes]) -> None:
    for relative, data in files.items():
        target = folder.joinpath(*relative.split("/"))
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)


def read_tree(root: Path) -> dict[str, bytes]:
    """Every file under *root* by its POSIX relative path."""
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def short(files: dict[str, bytes]) -> dict[str, str]:
    """A readable summary of a tree for assertion messages: path -> size and SHA-256."""
    return {p: f"{len(d)}:{hashlib.sha256(d).hexdigest()[:12]}" for p, d in files.items()}


# ----- the steps of the logging child of test_kill_while_logging ---------------------

SMALL_BATCH = 40
"""Files of a "pack" step: 32 or more small files go into the embedded store's packs."""


@dataclass(frozen=True)
class Step:
    """What step *index* logs: ``origin`` is the step whose content it is (itself, or the
    earlier step it logs again), and the content is a function of the seed and origin."""

    index: int
    origin: int
    collection: str
    kind: str

    @property
    def alias(self) -> str:
        return f"s{self.index}"

    @property
    def metadata(self) -> dict[str, object]:
        return {"origin": self.origin, "kind": self.kind}

    def files(self, seed_value: int) -> dict[str, bytes]:
        rng = random.Random(f"{seed_value}:files:{self.origin}")
        label = f"step{self.origin}"
        if self.kind == "pack":
            sizes = {f"part/{n:02d}.bin": rng.randrange(1, 4096) for n in range(SMALL_BATCH)}
        elif self.kind == "few":
            sizes = {f"f{n}.txt": rng.randrange(0, 2048) for n in range(3)}
        else:  # large: one file over the small-blob limit beside a small one
            sizes = {"weights.bin": rng.randrange(1_100_000, 1_600_000), "config.json": 300}
        return {path: content(seed_value, f"{label}:{path}", size) for path, size in sizes.items()}


def step(seed_value: int, index: int) -> Step:
    """Step *index* of the logging child: mostly new content into three shared collections,
    sometimes a new collection, sometimes the content of an earlier step again."""
    rng = random.Random(f"{seed_value}:step:{index}")
    if index >= 3 and rng.random() < 0.15:
        earlier = step(seed_value, rng.randrange(index))
        return Step(index, earlier.origin, earlier.collection, earlier.kind)
    collection = f"new{index}" if rng.random() < 0.1 else f"shared{rng.randrange(3)}"
    kind = rng.choices(["pack", "few", "large"], weights=[4, 4, 2])[0]
    return Step(index, index, collection, kind)


# ----- the versions of the concurrent writers -----------------------------------------


def writer_collection(writer: int, index: int, collections: int) -> str:
    return f"shared{(writer + index) % collections}"


def writer_files(seed_value: int, writer: int, index: int) -> dict[str, bytes]:
    """Version *index* of *writer*: a few small files, one in four versions a large one."""
    rng = random.Random(f"{seed_value}:writer:{writer}:{index}")
    label = f"w{writer}v{index}"
    files = {
        f"data/{n}.txt": content(seed_value, f"{label}:{n}", rng.randrange(1, 3000))
        for n in range(4)
    }
    files["common.txt"] = b"the same bytes in every version\n"
    if rng.random() < 0.25:
        files["model.bin"] = content(seed_value, f"{label}:model", 1_200_000)
    return files
