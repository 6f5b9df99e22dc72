"""Stage 1, the gallery: the table of images and their metadata.

``_table`` holds :class:`~cirscope.Gallery` (folders, CSV/Parquet metadata, URLs);
``_decode`` turns files and bytes into RGB images, reports the ones it cannot read and
makes thumbnails.
"""
