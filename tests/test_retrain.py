"""make retrain end to end on fixture submissions: export -> train with --extra-data -> compare with the
served CNN. The card counts the player drawings per class; deleted ones never reach training."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from tests.utils.app import app_client
from tests.utils.fixtures import load_pairs
from tests.utils.submissions import body

pytestmark = pytest.mark.slow

TRAIN = ["--epochs", "1", "--batch-size", "16", "--no-mlflow"]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """Main data (cat, dog, airplane: 25 real drawings each) and a model store serving a CNN trained on it."""
    from training.train import main

    data = tmp_path_factory.mktemp("data")
    (data / "numpy_bitmap").mkdir()
    for cat in ("cat", "dog", "airplane"):
        np.save(data / "numpy_bitmap" / f"{cat}.npy", load_pairs(cat)[0])
    store = tmp_path_factory.mktemp("store")
    main(["cnn", "--data-dir", str(data), "--output-dir", str(store), *TRAIN])
    return data, store


def mirrored(line: dict) -> list:
    """A new drawing from a real one: its mirror image (x -> 255 - x), as a player might draw it."""
    return [[[255 - x for x in xs], ys] for xs, ys in line["drawing"]]


def test_retrain_exports_trains_on_player_drawings_and_compares(served, database_url, no_models, tmp_path, capsys):
    from models.card import read_card
    from training.retrain import main

    data, store = served
    (served_dir,) = (store / "cnn").iterdir()
    with app_client(database_url, no_models) as client:

        def keep(label: str, strokes: list, source: str = "player") -> dict:
            r = client.post("/submissions", json=body(label=label, strokes=strokes, label_source=source))
            assert r.status_code == 201, r.text
            return r.json()

        for category in ("cat", "dog"):
            for line in load_pairs(category)[1][:15]:
                keep(category, mirrored(line))
        keep("house", mirrored(load_pairs("cat")[1][20]))  # a category the CNN lacks: counted, not used
        keep("airplane", mirrored(load_pairs("airplane")[1][0]), source="prompt")  # never confirmed: not exported
        gone = keep("cat", mirrored(load_pairs("cat")[1][24]))
        r = client.delete(f"/submissions/{gone['id']}", headers={"X-Delete-Token": gone["delete_token"]})
        assert r.status_code == 204

    export, runs = tmp_path / "export", tmp_path / "runs"
    argv = ["--database-url", database_url, "--data-dir", str(data), "--export-dir", str(export)]
    argv += ["--model-store", str(store), "--output-dir", str(runs), "--promote", "--", *TRAIN]
    assert main(argv) == 0
    printed = capsys.readouterr().out

    assert json.loads((export / "counts.json").read_text())["categories"] == {"cat": 15, "dog": 15, "house": 1}
    (new_dir,) = (runs / "cnn").iterdir()
    card = read_card(new_dir)
    extra = card.data.extra
    assert extra is not None and extra.sources == [str(export)]
    assert set(extra.counts) == {"cat", "dog"} and extra.ignored == {"house": 1}
    assert {c: sum(n.values()) for c, n in extra.counts.items()} == {"cat": 15, "dog": 15}
    # Trained and validated on: the main data's drawings plus the players' train and val ones.
    for c in ("cat", "dog"):
        served_counts = read_card(served_dir).data.counts[c]
        assert card.data.counts[c]["train"] == served_counts["train"] + extra.counts[c]["train"]
        assert card.data.counts[c]["val"] == served_counts["val"] + extra.counts[c]["val"]
        assert card.data.counts[c]["test"] == served_counts["test"]  # the players' test part is held out
    assert card.metrics.n == sum(n["test"] for n in read_card(served_dir).data.counts.values())

    report = json.loads((new_dir / "report" / "vs_served.json").read_text())
    assert report["served"] == served_dir.name and report["new"] == new_dir.name
    test = report["test_split"]
    assert test["n"] == card.metrics.n and 0 <= test["mcnemar_p"] <= 1
    assert abs(test["new"]["top1"] - card.metrics.top1) < 1e-3  # the same drawings as the card's figures
    held_out = sum(n["test"] for n in extra.counts.values())
    assert report.get("players_held_out", {"n": 0})["n"] == held_out
    verdict = re.search(r"vs served \S+: (better|not better): top-1 on the test split", printed)
    assert verdict and (verdict.group(1) == "better") == report["better"]
    # Promoted exactly when better.
    assert (store / "cnn" / new_dir.name).is_dir() == report["better"]
    assert bool(re.search(r"^promoted: ", printed, re.M)) == report["better"]


def test_retrain_with_no_kept_drawings_says_so(served, database_url, no_models, tmp_path, capsys):
    from training.retrain import main

    data, store = served
    with app_client(database_url, no_models):
        pass  # creates the (empty) database
    argv = ["--database-url", database_url, "--data-dir", str(data), "--export-dir", str(tmp_path / "export")]
    assert main([*argv, "--model-store", str(store), "--output-dir", str(tmp_path / "runs")]) == 1
    assert "nothing to retrain on" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()
