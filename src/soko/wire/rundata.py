"""What a run records besides lineage, on the wire: config, summary and history rows.

History rows and the summary travel as JSON *text* (a string field holding a JSON object),
because they may hold NaN and infinities, which a JSON body built by the usual encoders
refuses; :mod:`soko.core.runlog` states the rules and bounds, checked here before a
request reaches the service.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from soko.core import runlog
from soko.wire.base import WireModel
from soko.wire.fields import Checked

RunConfig = Annotated[
    dict[str, object], Checked(runlog.validate_run_config, {"description": "A JSON object."})
]
HistoryRowText = Annotated[
    str,
    Checked(
        runlog.validate_row_text,
        {
            "maxLength": runlog.ROW_MAX_BYTES,
            "description": "A JSON object (NaN and Infinity allowed) with an integer _step.",
        },
    ),
]
SummaryText = Annotated[
    str,
    Checked(
        runlog.validate_summary_text,
        {
            "maxLength": runlog.SUMMARY_MAX_BYTES,
            "description": "A JSON object (NaN and Infinity allowed).",
        },
    ),
]


class RunDataIn(WireModel):
    """Replace the config and the summary (each when given); add history rows."""

    config: RunConfig | None = None
    summary: SummaryText | None = None
    history: list[HistoryRowText] = Field(
        default_factory=list, max_length=runlog.ROWS_PER_REQUEST_MAX
    )


class HistoryOut(WireModel):
    """Kept history rows, oldest first, each the JSON text it was logged as."""

    rows: list[str]
