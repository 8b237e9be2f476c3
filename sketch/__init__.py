"""Sketch preprocessing shared by training, the API and the tests: one copy of the logic.

Version this whenever an output changes: models record the version they were trained with.
"""

PREPROCESSING_VERSION = "1"
