"""Relational metadata: the schema, the engine (SQLite pragmas or PostgreSQL), migrations.

Imports core and errors only; never storage, refs, wire or anything above.
"""
