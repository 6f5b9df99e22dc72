"""Stage 3b, the map: 2-D layouts of the embedding space.

``_compute`` makes a map (UMAP or PCA) and ``_cache`` keeps it on disk; ``_fit`` runs the
UMAP stages; ``_sample`` fits large maps on a sample and places and refines the rest;
``_place`` puts new points on a map from their neighbours; ``_knn`` builds the annoy
neighbour graph those steps share; ``_quality`` measures how well a layout keeps
neighbourhoods; ``_progress`` records how far a fit has come (and cancels it) and
``_background`` runs a fit in a daemon thread, shared by every map that waits for it.
"""
