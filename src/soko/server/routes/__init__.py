"""The API's routers, one module per resource, all under ``/api/v1``."""
