"""Shared low-level helpers used by every stage.

``arrays`` (matrix checks, row normalisation, top-k), ``hashing`` (fingerprints, file
digests, sampled-row hashes), ``atomic`` (crash-safe writes), ``errors`` (the exceptions users see) and ``text`` (escaping user data for HTML,
scripts, charts and terminals) and ``wording`` (filling text templates with "a"/"an" that agree). Nothing here imports another part of cirscope.
"""
