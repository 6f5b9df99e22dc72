"""The space: a gallery, its embeddings and the model that made them.

``_space`` holds :class:`~cirscope.Space`, which delegates searching to :mod:`~cirscope.query`
and maps to :mod:`~cirscope.projection`; ``_files`` saves and verifies a space on disk;
``_parquet`` opens a folder of Parquet shards as a space.
"""
