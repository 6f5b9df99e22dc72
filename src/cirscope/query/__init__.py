"""Stage 4, composed queries: a reference image plus a modification text.

``_methods`` holds the composition formulas (PDV, text-only, image-only, sum, ...);
``_composed`` holds :class:`~cirscope.ComposedQuery` and :class:`~cirscope.Vocabulary`;
``_search`` resolves, composes and searches in one pass, returning rows, scores and the
query vector.
"""
