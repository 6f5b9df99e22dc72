"""The ``cirscope`` command: one module per subcommand.

``_main`` builds the parser from the command modules and dispatches; ``_embed`` (with
``_embed_shards`` for Parquet shards, in process or on Ray), ``_toy_eval``, ``_eval``,
``_audit``, ``_bench``, ``_demo`` and ``_export_page`` (``cirscope export``) each add and run
one subcommand; ``_errors`` holds the one-line error they raise.
"""

from cirscope.cli._main import main

__all__ = ["main"]
