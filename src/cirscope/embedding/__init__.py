"""Stage 2, embedding: images and texts to unit vectors.

``_embedder`` loads open_clip models, checkpoints and registered models (such as the toy)
and runs the embedding loop; ``_pipeline`` decodes in worker processes; ``_gpu_preprocess``
resizes on the GPU; ``_cache`` keeps finished rows on disk so a rerun resumes; ``_api``
(:func:`cirscope.embed`) writes Parquet shards in process or on Ray (``_shards``,
``_shard_sources``, ``_shard_worker``, ``_ray_engine``).
"""
