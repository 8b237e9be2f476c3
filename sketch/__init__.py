"""Sketch preprocessing shared by training, the API and the tests: one copy of the logic.

Version this whenever an output changes: models record the version they were trained with, and a
model card whose version is not in ``COMPATIBLE_PREPROCESSING_VERSIONS`` is refused at load.
Keep an old version listed only when models made with it still see what they were trained on.
"""

# 2: strokes are rasterised by cairo exactly as Google's numpy_bitmap script (version 1 was a numpy
#    approximation, about 2 grey levels off), and the canvas-image path measures the pen afresh.
#    Normalised strokes and RNN sequences are bit-identical to version 1. Models made with version 1
#    still see what they were trained on: the CNN learned from Google's own bitmaps, which version 2
#    reproduces (closer than 1 did), and the RNN's sequences have not changed.
PREPROCESSING_VERSION = "2"
COMPATIBLE_PREPROCESSING_VERSIONS = frozenset({"1", "2"})
