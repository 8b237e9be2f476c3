"""MultiWorkerMirroredStrategy from TF_CONFIG: two local workers train in lockstep, only the chief exports."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import numpy as np
import pytest

from tests.utils.fixtures import FIXTURES, REPO
from training import distributed


def test_tf_config_decides_workers_and_chief(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    assert (distributed.worker_count(), distributed.worker_index(), distributed.is_chief()) == (1, 0, True)
    cluster = {"worker": ["127.0.0.1:1", "127.0.0.1:2"]}
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": cluster, "task": {"type": "worker", "index": 1}}))
    assert (distributed.worker_count(), distributed.worker_index(), distributed.is_chief()) == (2, 1, False)
    cluster = {"chief": ["127.0.0.1:0"], **cluster}
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": cluster, "task": {"type": "worker", "index": 0}}))
    assert (distributed.worker_count(), distributed.worker_index(), distributed.is_chief()) == (3, 1, False)
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": cluster, "task": {"type": "chief", "index": 0}}))
    assert distributed.is_chief()


@pytest.mark.slow
def test_two_local_workers_end_with_identical_weights_and_one_export(tmp_path):
    data = tmp_path / "official"
    (data / "numpy_bitmap").mkdir(parents=True)
    for cat in ("cat", "dog", "airplane"):
        np.save(data / "numpy_bitmap" / f"{cat}.npy", np.load(FIXTURES / "pairs" / f"{cat}.npy"))
    store, logs = tmp_path / "store", tmp_path / "logs"
    train = ["cnn", "--data-dir", str(data), "--shards-dir", str(tmp_path / "shards"), "--output-dir", str(store)]
    cmd = [sys.executable, "-m", "training.launch", "--workers", "2", "--log-dir", str(logs), "--", *train]
    # Without the prior correction, which would fold a validation-chosen shift into the exported bias.
    done = subprocess.run(
        [*cmd, "--epochs", "2", "--batch-size", "8", "--no-mlflow", "--no-prior-correction"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:] + (logs / "worker-0.log").read_text()[-3000:]
    texts = [(logs / f"worker-{i}.log").read_text() for i in range(2)]
    digests = [re.search(r"weights sha256 (\w+) \(worker (\d)\)", t).groups() for t in texts]
    assert digests[0][1] == "0" and digests[1][1] == "1"
    assert digests[0][0] == digests[1][0], "the workers ended with different weights"
    # Both took part in every step: each logged both epochs.
    assert all(t.count("Epoch 2/2") == 1 for t in texts)
    (exported,) = (store / "cnn").iterdir()
    assert "exported" in texts[0] and "exported" not in texts[1]
    import keras

    model = keras.saving.load_model(exported / "model.keras")
    assert distributed.weights_digest(model) == digests[0][0]
