"""Stage 1, the gallery: the table of images and their metadata.

``_table`` holds :class:`~cirscope.Gallery` (folders, data frames, URLs, in-memory images);
``_metadata`` reads metadata tables and joins them onto the images by file name;
``_stored`` writes and reads the saved gallery (``gallery.parquet``); ``_decode`` turns
files and bytes into RGB images, reports the ones it cannot read and makes thumbnails.
"""
