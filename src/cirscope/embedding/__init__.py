"""Stage 2, embedding: images and texts to unit vectors.

``_embedder`` is the :class:`~cirscope.Embedder`; ``_models`` the registry of models that
carry their own loader and weights (the shipped toy registers there, as any user model can,
with :func:`cirscope.register_model`); ``_loading`` loads open_clip architectures,
checkpoints and hub names and fingerprints weights; ``_run`` is the embedding run over a
gallery; ``_pipeline`` decodes in worker processes (``_chunks``: what one worker does);
``_gpu_preprocess`` resizes on the GPU; ``_cache`` keeps finished rows on disk so a rerun
resumes. Parquet shards, written in process or on Ray (:func:`cirscope.embed`, which lives
in :mod:`cirscope.space` because it returns a space):
``_shard_sources`` plans the shards of a source, ``_shard_read`` reads one, ``_shard_worker``
embeds it, ``_shard_write`` writes it, ``_shards`` is the folder layout, manifest and reader,
``_ray_engine`` runs the workers on Ray Data.
"""
