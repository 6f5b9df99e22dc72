"""Stage 3a, nearest neighbours: the index behind every search.

``_index`` holds :class:`~cirscope.NeighborIndex` (exact below a few thousand rows, an
approximate backend above, calibrated to a recall target); ``_search`` answers its queries
(exact products, backend candidates rescored); ``_calibrate`` chooses the search breadth and
measures recall; ``_persist`` saves, verifies and reopens it; ``_backends`` wraps annoy and
faiss behind one interface.
"""
