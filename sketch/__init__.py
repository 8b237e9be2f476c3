"""Sketch preprocessing shared by training, the API and the tests: one copy of the logic.

Version this whenever an output changes: models record the version they were trained with, and a
model card whose version is not in ``COMPATIBLE_PREPROCESSING_VERSIONS`` is refused at load.
Keep an old version listed only when models made with it still see what they were trained on.
"""

PREPROCESSING_VERSION = "1"
COMPATIBLE_PREPROCESSING_VERSIONS = frozenset({"1"})
