"""Stage 3b, the map: 2-D layouts of the embedding space.

``_compute`` runs UMAP or PCA and caches the result; ``_sample`` fits large maps on a
sample and places the rest; ``_knn`` builds the neighbour graph those steps share;
``_quality`` measures how well a layout keeps neighbourhoods.
"""
