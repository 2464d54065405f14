"""The web UI's previews without a server: pages of a Table read from a stream, and
thumbnails made by Pillow (scaled, kept by digest within a byte budget, never decoding a
decompression bomb)."""

from __future__ import annotations

import contextlib
import io
import json
import struct
import zlib
from collections.abc import Callable
from typing import Any, BinaryIO

import pytest
from PIL import Image

from soko.core.digests import Digest
from soko.errors import ValidationError
from soko.server.ui import tables, thumbs
from soko.server.ui.kinds import preview_kind


class Counting(io.BytesIO):
    """A blob reader that counts the bytes read from it."""

    def __init__(self, data: bytes, seen: list[int]) -> None:
        super().__init__(data)
        self.seen = seen

    def read(self, size: int | None = -1) -> bytes:
        chunk = super().read(size)
        self.seen[0] += len(chunk)
        return chunk


def opener(data: bytes, seen: list[int] | None = None) -> Callable[[], BinaryIO]:
    counter = seen if seen is not None else [0]
    return lambda: Counting(data, counter)


def table_json(rows: list[list[Any]], columns: list[str] | None = None, **extra: Any) -> bytes:
    names = columns if columns is not None else [f"c{i}" for i in range(len(rows[0]))]
    document = {"_type": "table", "columns": names, "data": rows, "nrows": len(rows), **extra}
    return json.dumps(document, sort_keys=True).encode()  # nrows after data, as soko writes


def test_preview_kinds_by_name() -> None:
    assert preview_kind("a/b/rows.table.json") == "table"
    assert preview_kind("media/images/x.PNG") == "image"
    assert preview_kind("sample.image-file.json") == "image"
    assert preview_kind("icon.svg") is None
    assert preview_kind("other.json") is None
    assert preview_kind("table.json.txt") is None


def test_a_table_is_read_a_page_at_a_time() -> None:
    rows = [[i, f"row {i}"] for i in range(130)]
    data = table_json(rows, ["id", "text"])
    shape = tables.read_shape(opener(data), path="t.table.json")
    assert shape == tables.Shape(["id", "text"], 130)
    first = tables.read_page(opener(data), shape, path="t.table.json", number=1)
    assert [c.text for c in first.rows[0]] == ["0", "row 0"]
    assert (first.first, len(first.rows), first.has_next) == (1, 50, True)
    last = tables.read_page(opener(data), shape, path="t.table.json", number=3)
    assert (last.first, len(last.rows), last.has_next) == (101, 30, False)
    assert last.rows[-1][1].text == "row 129"
    assert tables.read_page(opener(data), shape, path="t.table.json", number=4).rows == []


def test_the_first_page_of_a_large_table_reads_little_of_it() -> None:
    rows = [[i, "x" * 100] for i in range(20_000)]
    data = table_json(rows)
    seen = [0]
    shape = tables.Shape(["c0", "c1"], None)
    page = tables.read_page(opener(data, seen), shape, path="big.table.json", number=1)
    assert len(page.rows) == 50 and page.has_next
    assert seen[0] < len(data) / 10, (seen[0], len(data))


def test_cells_are_text_or_images_and_are_cut() -> None:
    assert tables.cell(None) == tables.Cell("")
    assert tables.cell(True) == tables.Cell("true")
    assert tables.cell(2.5) == tables.Cell("2.5")
    assert tables.cell("<script>x</script>") == tables.Cell("<script>x</script>")
    image = {"_type": "image-file", "path": "media/images/a.png", "caption": "a cat"}
    assert tables.cell(image) == tables.Cell("a cat", image="media/images/a.png")
    assert tables.cell({"k": [1, 2]}) == tables.Cell('{"k": [1, 2]}')
    cut = tables.cell("y" * 10_000).text
    assert len(cut) == tables.CELL_CHARS and cut.endswith("…")


def test_wide_tables_show_the_first_columns_and_rows_are_padded() -> None:
    width = tables.COLUMNS_SHOWN + 7
    data = table_json([list(range(width)), [1]], [f"c{i}" for i in range(width)])
    shape = tables.read_shape(opener(data), path="w.table.json")
    page = tables.read_page(opener(data), shape, path="w.table.json", number=1)
    assert len(page.columns) == tables.COLUMNS_SHOWN and page.hidden_columns == 7
    assert [len(r) for r in page.rows] == [tables.COLUMNS_SHOWN] * 2


def test_a_table_without_nrows_or_columns_still_pages() -> None:
    data = json.dumps({"data": [[1, 2, 3]] * 60}).encode()
    shape = tables.read_shape(opener(data), path="n.table.json")
    assert shape == tables.Shape([], None)
    page = tables.read_page(opener(data), shape, path="n.table.json", number=1)
    assert page.columns == ["0", "1", "2"] and page.total is None and page.has_next


def test_a_broken_table_is_a_clear_error() -> None:
    with pytest.raises(ValidationError, match="not valid JSON"):
        broken = opener(b'{"data": [[1], [2')
        tables.read_page(broken, tables.Shape([], None), path="b.table.json", number=1)
    with pytest.raises(ValidationError, match="not valid JSON"):
        tables.read_shape(opener(b"\xff\xfe<html>"), path="b.table.json")


def test_shapes_are_kept_by_digest() -> None:
    seen = [0]
    data = table_json([[1]])
    shapes = tables.Shapes()
    digest = Digest.of_bytes(data)
    shapes.of(digest, opener(data, seen), path="k.table.json")
    read = seen[0]
    assert shapes.of(digest, opener(data, seen), path="k.table.json").rows == 1
    assert seen[0] == read


def png(width: int, height: int, mode: str = "RGB") -> bytes:
    out = io.BytesIO()
    Image.new(mode, (width, height), (10, 120, 200, 128)[: len(mode)]).save(out, "PNG")
    return out.getvalue()


def png_header(width: int, height: int) -> bytes:
    """A PNG that announces width by height pixels and holds almost nothing: a bomb."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


def test_thumbnails_fit_the_box_and_keep_transparency() -> None:
    photo = thumbs.scale(png(1000, 500))
    assert photo.refused is None and photo.media_type == "image/jpeg"
    with Image.open(io.BytesIO(photo.data)) as made:
        assert made.size == (thumbs.BOX, thumbs.BOX // 2)
    clear = thumbs.scale(png(40, 30, "RGBA"))
    assert clear.media_type == "image/png"
    with Image.open(io.BytesIO(clear.data)) as made:
        assert made.size == (40, 30) and made.mode == "RGBA"  # small images are not enlarged


@pytest.mark.parametrize("size", [(10_000, 10_000), (40_000, 40_000)])
def test_a_decompression_bomb_gets_a_placeholder(size: tuple[int, int]) -> None:
    # 10,000² is over Pillow's MAX_IMAGE_PIXELS (where it only warns), 40,000² over twice
    # that (where it refuses): neither is decoded.
    warned = size[0] == 10_000
    with pytest.warns(Image.DecompressionBombWarning) if warned else contextlib.nullcontext():
        thumb = thumbs.scale(png_header(*size))
    assert thumb.refused == "too-large" and thumb.media_type == "image/svg+xml"
    assert b"Too large" in thumb.data and b"<script" not in thumb.data


def test_the_limit_is_pillows(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    with pytest.warns(Image.DecompressionBombWarning):
        assert thumbs.scale(png(11, 10)).refused == "too-large"
    assert thumbs.scale(png(10, 10)).refused is None


def test_unreadable_and_oversized_files_get_placeholders() -> None:
    assert thumbs.scale(b"<svg onload=alert(1)>").refused == "unreadable"
    assert thumbs.scale(png(20, 20)[:60]).refused == "unreadable"  # truncated
    seen = [0]
    big = thumbs.make(opener(b"x", seen), size=thumbs.MAX_SOURCE_BYTES + 1)
    assert big.refused == "too-large" and seen[0] == 0


def test_thumbnails_are_kept_by_digest_within_a_byte_budget() -> None:
    images = [png(300 + i, 300) for i in range(4)]
    made = [thumbs.scale(d) for d in images]
    kept = thumbs.Thumbs(limit=len(made[0].data) * 2 + len(made[0].data) // 2)
    seen = [0]
    for data in images:
        kept.of(Digest.of_bytes(data), opener(data, seen), size=len(data))
    assert len(kept) == 2  # the oldest dropped
    read = seen[0]
    kept.of(Digest.of_bytes(images[3]), opener(images[3], seen), size=len(images[3]))
    assert seen[0] == read
    kept.of(Digest.of_bytes(images[0]), opener(images[0], seen), size=len(images[0]))
    assert seen[0] > read
