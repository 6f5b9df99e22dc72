"""The space: a gallery, its embeddings and the model that made them.

``_space`` holds :class:`~cirscope.Space`, which delegates searching to :mod:`~cirscope.query`
and maps to :mod:`~cirscope.projection`; loaders hand it :class:`~cirscope.space._parts.SpaceParts`:
``_persist`` saves a space to a folder and reads one back (``_files`` checks the files),
``_parquet`` reads a folder of Parquet shards; ``_embed`` is :func:`cirscope.embed`, which
embeds a source into such shards; ``_filters`` turns metadata filters into row masks and
cross-filter counts (``space.search(..., where=...)``, the Explorer's filter panel).
"""
