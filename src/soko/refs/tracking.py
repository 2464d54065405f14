"""References of schemes soko cannot read: tracked by URI only, never fetched."""

from __future__ import annotations

from typing import BinaryIO

from soko.core.manifest import Entry
from soko.core.names import validate_artifact_path
from soko.errors import ValidationError
from soko.terminal import termwarn


class TrackingHandler:
    def entries(
        self, uri: str, *, name: str | None, checksum: bool, max_objects: int | None
    ) -> list[Entry]:
        if not name:
            raise ValidationError(
                f'You must pass name="<entry_name>" when tracking references with unknown '
                f"schemes. ref: {uri}"
            )
        termwarn(f"Artifact references with unsupported schemes cannot be checksummed: {uri}")
        return [Entry(path=validate_artifact_path(name), digest=uri, ref=uri)]

    def fetch(self, entry: Entry, out: BinaryIO) -> None:
        raise ValidationError(
            f"{entry.ref!r} is tracked by URI only; soko cannot download it "
            "(use allow_missing_references=True)."
        )
