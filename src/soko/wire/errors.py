"""The JSON body of every error answer: ``{"error": {"code": ..., "message": ...}}``.

``code`` is the stable code of a :mod:`soko.errors` class (``not_found``,
``permission_denied``, …), which the client maps back with
:func:`soko.errors.error_for_code`; a few HTTP-level codes (``payload_too_large``,
``method_not_allowed``, ``internal_error``) have no class and map to ``SokoError``.
"""

from __future__ import annotations

from soko.wire.base import WireModel


class ErrorDetail(WireModel):
    code: str
    message: str


class ErrorBody(WireModel):
    error: ErrorDetail
