"""Shared fixtures: real Quick, Draw! drawings committed under tests/fixtures (see ATTRIBUTION.md)."""

from __future__ import annotations

import os

# Before TensorFlow loads, here and in every training subprocess (they inherit it): tf.data runs the
# CNN's Keras augmentation (a stateful random op) in a parallel map, whose calls take the random state
# in whatever order the threads run, so a seeded training run still differs run to run (loss, the
# prior correction's tau, the Challenge threshold). With op determinism such a map runs in order.
os.environ.setdefault("TF_DETERMINISTIC_OPS", "1")

import numpy as np
import pytest

from tests.utils.app import app_client
from tests.utils.fixtures import FIXTURES, PAIR_CATEGORIES, load_pairs

# PostgreSQL and per-back-end database fixtures (database_url, db_client).
pytest_plugins = ["tests.utils.database", "tests.utils.fake_api"]


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
