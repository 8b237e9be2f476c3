"""Real Quick, Draw! drawings committed under tests/fixtures (see ATTRIBUTION.md), and small helpers to read them."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures"
PAIR_CATEGORIES = ("cat", "airplane", "dog")


def read_ndjson(path: Path) -> list[dict]:
    return [json.loads(line) for line in gzip.decompress(path.read_bytes()).decode().splitlines()]


def load_pairs(category: str) -> tuple[np.ndarray, list[dict], list[dict]]:
    """(bitmaps (25, 784), simplified lines, raw lines) of the same 25 drawings."""
    bitmaps = np.load(FIXTURES / "pairs" / f"{category}.npy")
    simplified = read_ndjson(FIXTURES / "pairs" / f"{category}.simplified.ndjson.gz")
    raw = read_ndjson(FIXTURES / "pairs" / f"{category}.raw.ndjson.gz")
    return bitmaps, simplified, raw


def every_stroke_source(root: Path) -> Path:
    """The pair categories in simplified/ and raw/ (same key_ids) and again in simplified_kaggle/
    (no key_id), and pig as a sketch-rnn .npz plus strokes_extra/ lines, one of them a copy of an
    .npz drawing (its absolute points, as the folder's own lines are made)."""
    from sketch.sequence import stroke3_to_drawing

    for fmt in ("simplified", "raw", "simplified_kaggle", "sketchrnn", "strokes_extra"):
        (root / fmt).mkdir(parents=True)
    for cat in PAIR_CATEGORIES:
        for fmt in ("simplified", "raw"):
            shutil.copy(FIXTURES / "pairs" / f"{cat}.{fmt}.ndjson.gz", root / fmt / f"{cat}.ndjson.gz")
        with gzip.open(root / "simplified_kaggle" / f"{cat}.ndjson.gz", "wt") as f:
            for line in load_pairs(cat)[1]:
                f.write(json.dumps({"word": cat, "drawing": line["drawing"]}) + "\n")
    shutil.copy(FIXTURES / "sketchrnn_pig.npz", root / "sketchrnn" / "pig.npz")
    extra = gzip.decompress((FIXTURES / "strokes_extra_pig.ndjson.gz").read_bytes()).decode()
    first = np.load(FIXTURES / "sketchrnn_pig.npz", allow_pickle=True, encoding="latin1")["test"][0]
    copy = [s.T.tolist() for s in stroke3_to_drawing(first)]
    copy_line = json.dumps({"word": "pig", "drawing": copy, "format": "sketchrnn-stroke3-abs"})
    (root / "strokes_extra" / "pig.ndjson.gz").write_bytes(gzip.compress((extra + copy_line + "\n").encode()))
    return root


def official_drawings() -> list[list]:
    """Every official stroke drawing of the fixtures, raw and simplified (286), in the dataset's form."""
    files = [FIXTURES / "pairs" / f"{c}.{kind}.ndjson.gz" for c in PAIR_CATEGORIES for kind in ("raw", "simplified")]
    files += [
        FIXTURES / n
        for n in ("strokes_simplified.ndjson.gz", "pairs_matched.ndjson.gz", "strokes_largest_raw.ndjson.gz")
    ]
    return [line["drawing"] for f in files for line in read_ndjson(f)]


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.astype(float).ravel(), b.astype(float).ravel())[0, 1])
