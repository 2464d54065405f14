"""Values stored in artifacts in W&B's formats: Table, Image (with its masks, boxes and
class set), PartitionedTable, JoinedTable.

``Artifact.add(obj, name)`` / ``artifact[name] = obj`` and ``Artifact.get(name)`` /
``artifact[name]`` delegate to :func:`add_to_artifact` and :func:`load_from_artifact`.
Importing this package imports no numpy, Pillow or pandas; they are loaded on first use.
"""

from __future__ import annotations

from soko.sdk.data_types.base import Media, WBValue
from soko.sdk.data_types.image import Image
from soko.sdk.data_types.io import add_to_artifact, load_from_artifact
from soko.sdk.data_types.joined import JoinedTable
from soko.sdk.data_types.overlays import BoundingBoxes2D, Classes, ImageMask
from soko.sdk.data_types.partitioned import PartitionedTable
from soko.sdk.data_types.table import Table

__all__ = [
    "BoundingBoxes2D",
    "Classes",
    "Image",
    "ImageMask",
    "JoinedTable",
    "Media",
    "PartitionedTable",
    "Table",
    "WBValue",
    "add_to_artifact",
    "load_from_artifact",
]
