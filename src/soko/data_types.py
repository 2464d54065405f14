"""``soko.data_types``: W&B's ``wandb.data_types`` names, so ``from soko.data_types import
PartitionedTable`` works as it does with wandb. The classes live in :mod:`soko.sdk.data_types`.
"""

from __future__ import annotations

from soko.sdk.data_types import (
    BoundingBoxes2D,
    Classes,
    Image,
    ImageMask,
    JoinedTable,
    PartitionedTable,
    Table,
)

__all__ = [
    "BoundingBoxes2D",
    "Classes",
    "Image",
    "ImageMask",
    "JoinedTable",
    "PartitionedTable",
    "Table",
]
