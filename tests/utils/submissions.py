"""A real drawing (tests/fixtures, CC BY 4.0) and a valid POST /submissions body around it."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

PAIRS = Path(__file__).resolve().parents[1] / "fixtures" / "pairs"


def first_drawing(name: str) -> list:
    with gzip.open(PAIRS / f"{name}.simplified.ndjson.gz", "rt") as f:
        return json.loads(f.readline())["drawing"]


CAT = first_drawing("cat")


def body(**overrides) -> dict:
    out = {"label": "cat", "strokes": CAT, "canvas": {"width": 256, "height": 256}}
    out.update(overrides)
    return out
