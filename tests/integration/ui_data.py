"""Data for the web UI's tests, logged through the SDK: a small pipeline with a sweep.

``prep`` logs the dataset ``raw-data`` (nested folders, a reference, and a description,
metadata and a file name holding HTML); four ``train`` runs each use it and log a
``model`` version of their own; ``evaluate`` uses the first model. ``samples`` is a
version of files that pages preview: a Table, images, a W&B Image and a decompression bomb.
"""

from __future__ import annotations

import io
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from server_fixtures import SokoServer, point_sdk_at, unique_project

HOSTILE = '<script>alert("x")</script>"><img src=x onerror=alert(1)>'
HOSTILE_FILE = 'evil"><img src=x onerror=alert(1)><script>alert(2)<script>.txt'
SWEEP = 4
ENTITY = "team"


def tiny_png(width: int = 24, height: int = 16) -> bytes:
    """A valid PNG of a gradient, made with the standard library."""
    rows = b"".join(
        b"\x00" + bytes(v for x in range(width) for v in (x * 10 % 256, y * 15 % 256, 160))
        for y in range(height)
    )

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


@dataclass
class Pipeline:
    entity: str
    project: str
    dataset_id: str = ""
    prep_run: str = ""
    train_runs: list[str] = field(default_factory=list)
    model_ids: list[str] = field(default_factory=list)
    eval_run: str = ""
    files: dict[str, bytes] = field(default_factory=dict)


def log_pipeline(entity: str, project: str, workdir: Path) -> Pipeline:
    import soko

    found = Pipeline(entity, project)
    found.files = {
        "README.md": b"# raw data\n",
        "images/train/cat.txt": b"meow" * 100,
        "images/train/dog.txt": b"woof" * 50,
        "labels/labels.csv": b"id,label\n1,cat\n2,dog\n",
        "images/train/pixel.png": tiny_png(),
        "images/icon.svg": b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>',
        HOSTILE_FILE: b"not a script",
    }
    source = workdir / "raw"
    for name, data in found.files.items():
        path = source / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    with soko.init(entity=entity, project=project, job_type="prep") as run:
        dataset = soko.Artifact(
            "raw-data", "dataset", description=HOSTILE, metadata={"source": HOSTILE, "rows": 2}
        )
        dataset.add_dir(str(source))
        dataset.add_reference("s3://soko-ui-test-bucket/extra/big.parquet", checksum=False)
        logged = run.log_artifact(dataset)
        logged.wait()
        found.dataset_id = logged.id
        found.prep_run = run.id
    for i in range(SWEEP):
        with soko.init(
            entity=entity, project=project, job_type="train", config={"lr": 0.1 * (i + 1)}
        ) as run:
            run.use_artifact("raw-data:latest")
            weights = workdir / f"model-{i}.bin"
            weights.write_bytes(f"weights {i}".encode())
            model = soko.Artifact("model", "model")
            model.add_file(str(weights), name="model.bin")
            logged = run.log_artifact(model)
            logged.wait()
            run.summary["loss"] = 1.0 / (i + 1)
            found.train_runs.append(run.id)
            found.model_ids.append(logged.id)
    with soko.init(entity=entity, project=project, job_type="evaluate") as run:
        run.use_artifact("model:v0")
        found.eval_run = run.id
    return found


@pytest.fixture(scope="session")
def pipeline(soko_server: SokoServer, tmp_path_factory: pytest.TempPathFactory) -> Pipeline:
    """The pipeline, logged once per session into a project of its own on the session's
    server, for the UI's tests over HTTP and in the browser."""
    tmp = tmp_path_factory.mktemp("ui-data")
    with pytest.MonkeyPatch.context() as monkeypatch:
        point_sdk_at(soko_server, soko_server.admin_key, tmp_path=tmp, monkeypatch=monkeypatch)
        return log_pipeline(ENTITY, unique_project("ui"), tmp / "work")


def png_bomb(width: int = 10_000, height: int = 10_000) -> bytes:
    """A PNG whose header announces more pixels than Pillow's MAX_IMAGE_PIXELS and that
    holds almost nothing: decoded, it would take gigabytes."""
    good = tiny_png(1, 1)
    # The IHDR chunk's body starts at byte 16: patch its width and height (and its CRC).
    body = b"IHDR" + struct.pack(">II", width, height) + good[24:29]
    return good[:12] + body + struct.pack(">I", zlib.crc32(body)) + good[33:]


TABLE_ROWS = 120


@dataclass
class Samples:
    """A version holding previewable files: a Table, images and a W&B Image."""

    project: str
    version_id: str = ""
    files: dict[str, bytes] = field(default_factory=dict)


def log_samples(entity: str, project: str, workdir: Path) -> Samples:
    from PIL import Image

    import soko

    found = Samples(project)
    workdir.mkdir(parents=True, exist_ok=True)
    photo = io.BytesIO()
    Image.new("RGB", (640, 320), (40, 120, 200)).save(photo, "JPEG")
    found.files = {
        "photos/photo.jpg": photo.getvalue(),
        "photos/bomb.png": png_bomb(),
        "photos/broken.png": b"\x89PNG\r\n\x1a\n not really",
    }
    red = workdir / "red.png"
    Image.new("RGB", (64, 48), (200, 30, 30)).save(red)
    with soko.init(entity=entity, project=project, job_type="samples") as run:
        artifact = soko.Artifact("samples", "dataset")
        for name, data in found.files.items():
            local = workdir / name.replace("/", "_")
            local.write_bytes(data)
            artifact.add_file(str(local), name=name)
        image = soko.Image(str(red), caption=HOSTILE)
        rows = [
            [i, HOSTILE if i == 0 else f"row {i}", image if i < 3 else None]
            for i in range(TABLE_ROWS)
        ]
        artifact.add(soko.Table(columns=["id", HOSTILE, "image"], data=rows), "rows")
        artifact.add(soko.Image(str(red)), "sample")
        logged = run.log_artifact(artifact)
        logged.wait()
        found.version_id = logged.id
    return found


@pytest.fixture(scope="session")
def samples(soko_server: SokoServer, tmp_path_factory: pytest.TempPathFactory) -> Samples:
    """The samples, logged once per session into a project of their own."""
    tmp = tmp_path_factory.mktemp("ui-samples")
    with pytest.MonkeyPatch.context() as monkeypatch:
        point_sdk_at(soko_server, soko_server.admin_key, tmp_path=tmp, monkeypatch=monkeypatch)
        return log_samples(ENTITY, unique_project("samples"), tmp / "work")
