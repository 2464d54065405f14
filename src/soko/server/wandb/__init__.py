"""W&B's own client against soko: the GraphQL API, file_stream and signed transfer URLs.

With ``WANDB_BASE_URL`` pointing at a soko server and ``WANDB_API_KEY`` set to a soko key,
the unchanged ``wandb`` package logs, uses and downloads artifacts and keeps its runs
here. Every resolver checks the caller's role and calls the same ``soko.service`` code as
the REST API; see ``docs/wandb-client.md``.
"""
