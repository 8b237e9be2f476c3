"""Shared fixtures: real Quick, Draw! drawings committed under tests/fixtures (see ATTRIBUTION.md)."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.utils.app import app_client

# PostgreSQL and per-back-end database fixtures (database_url, db_client).
pytest_plugins = ["tests.utils.database"]

FIXTURES = Path(__file__).parent / "fixtures"
REPO = Path(__file__).parent.parent
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
    from sketch.sequence import stroke3_to_strokes

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
    copy = [s.T.tolist() for s in stroke3_to_strokes(first)]
    copy_line = json.dumps({"word": "pig", "drawing": copy, "format": "sketchrnn-stroke3-abs"})
    (root / "strokes_extra" / "pig.ndjson.gz").write_bytes(gzip.compress((extra + copy_line + "\n").encode()))
    return root


@pytest.fixture(scope="session", autouse=True)
def training_stores(tmp_path_factory):
    """Training runs in tests keep their MLflow store and prepared shards in a temporary folder."""
    root = tmp_path_factory.mktemp("training-stores")
    mp = pytest.MonkeyPatch()
    mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root}/mlruns.db")
    mp.setenv("DEEPDRAW_SHARDS_ROOT", str(root / "shards"))
    yield root
    mp.undo()


@pytest.fixture(scope="session")
def pairs() -> dict[str, tuple[np.ndarray, list[dict], list[dict]]]:
    return {c: load_pairs(c) for c in PAIR_CATEGORIES}


@pytest.fixture(scope="session")
def test_split_bitmaps() -> tuple[np.ndarray, np.ndarray, list[str]]:
    data = np.load(FIXTURES / "bitmaps_test_split.npz")
    return data["x"].reshape(-1, 28, 28), data["y"], [str(c) for c in data["classes"]]


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    """The real app on the shipped models (lifespan run), with a throwaway submissions database."""
    with app_client(f"sqlite:///{tmp_path_factory.mktemp('db')}/submissions.db") as c:
        yield c


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.astype(float).ravel(), b.astype(float).ravel())[0, 1])
