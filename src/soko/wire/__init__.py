"""The HTTP API of a soko server (``/api/v1``): its pydantic models and its binary framing.

Shared by :mod:`soko.server` and :mod:`soko.client.http`, so that the two sides cannot
disagree about a field. Imports only :mod:`soko.core`, :mod:`soko.errors` and pydantic.
"""

API_PREFIX = "/api/v1"
