"""Stage 3a, nearest neighbours: the index behind every search.

``_index`` holds :class:`~cirscope.NeighborIndex` (exact below a few thousand rows, an
approximate backend above, calibrated to a recall target); ``_backends`` wraps annoy and
faiss behind one interface; ``_calibrate`` chooses the search breadth.
"""
