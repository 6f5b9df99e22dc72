"""Stage 4, composed queries: a reference image plus a modification text.

``_methods`` holds the registry of composing methods and :func:`compose` (the formulas, PDV,
text-only, image-only, sum, ..., are in ``_formulas``);
``_vocabulary`` holds :class:`~cirscope.Vocabulary` (zero-shot captions) and the registry of
named vocabularies that datasets fill (``_registry``: the lazy, import-free part of it);
``_composed`` holds :class:`~cirscope.ComposedQuery`;
``_search`` resolves, composes and searches in one pass, returning rows, scores and the
query vector.
"""
