"""The ``cirscope`` command: one module per subcommand.

``_main`` builds the parser and dispatches; ``_embed`` (in ``_main``), ``_embed_ray``,
``_audit``, ``_eval``, ``_bench`` and ``_demo`` each add and run one subcommand.
"""

from cirscope.cli._main import main

__all__ = ["main"]
