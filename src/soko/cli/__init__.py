"""The ``soko`` command line: thin commands over the SDK, the client and the service.

``main.py`` builds the parser and turns a :class:`~soko.errors.SokoError` into one line on
stderr and an exit code; each command group lives in its own module.
"""
