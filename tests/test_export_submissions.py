"""training.export_submissions on both back ends: official formats, only player-chosen or confirmed
labels, deleted drawings never exported, nothing about the player, readable by training's readers."""

from __future__ import annotations

import json
import re

import numpy as np
from sqlalchemy import create_engine, text

from sketch.raster import render_simplified
from sketch.strokes import from_dataset_format
from store.db import parse_database_url
from store.submissions import hash_token
from tests.utils.submissions import body
from training.data import iter_ndjson, read_bitmaps
from training.export_submissions import main, safe_category

DATASET_KEYS = {"key_id", "word", "countrycode", "timestamp", "recognized", "drawing"}
SQUARE = [[[0, 100, 100, 0, 0], [0, 0, 100, 100, 0]]]


def post(client, label: str, source: str = "player", **extra) -> dict:
    r = client.post("/submissions", json=body(label=label, label_source=source, **extra))
    assert r.status_code == 201, r.text
    return r.json()


def delete(client, item: dict) -> None:
    r = client.delete(f"/submissions/{item['id']}", headers={"X-Delete-Token": item["delete_token"]})
    assert r.status_code == 204


def test_export_writes_the_official_formats(db_client, database_url, tmp_path, capsys):
    cat1 = post(
        db_client, "cat", predictions=[{"label": "dog", "probability": 0.3}, {"label": "cat", "probability": 0.6}]
    )
    cat2 = post(db_client, "cat", strokes=SQUARE)
    dog = post(db_client, "dog", "confirmed", predictions=[{"label": "cat", "probability": 0.9}])
    post(db_client, "airplane", "prompt")  # the prompt, never confirmed: not exported
    delete(db_client, post(db_client, "cat"))  # deleted: never exported
    delete(db_client, post(db_client, "house"))  # a category whose only drawing was deleted
    post(db_client, "../evil")  # a label that cannot be a file name: skipped, nothing written outside
    old = post(db_client, "old")
    engine = create_engine(parse_database_url(database_url))  # a row from before label_source existed
    with engine.begin() as conn:
        conn.execute(text("UPDATE submissions SET label_source = 'unknown' WHERE id = :i"), {"i": old["id"]})
    engine.dispose()

    out = tmp_path / "exports" / "export"
    assert main(["--database-url", database_url, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert re.search(r"^cat\s+2$", printed, re.M) and re.search(r"^dog\s+1$", printed, re.M)
    assert "total" in printed and "skipped 1" in printed

    assert sorted(p.name for p in (out / "simplified").iterdir()) == ["cat.ndjson", "dog.ndjson"]
    assert sorted(p.name for p in (out / "numpy_bitmap").iterdir()) == ["cat.npy", "dog.npy"]
    assert sorted(p.name for p in out.parent.iterdir()) == ["export"]  # nothing written beside it
    assert json.loads((out / "counts.json").read_text()) == {
        "total": 3,
        "categories": {"cat": 2, "dog": 1},
        "label_sources": ["player", "confirmed"],
        "skipped_unusable_labels": 1,
    }

    cats = list(iter_ndjson(out / "simplified" / "cat.ndjson"))
    assert [c["key_id"] for c in cats] == [str(cat1["id"]), str(cat2["id"])]
    for line, item in zip(cats, (cat1, cat2), strict=True):
        assert set(line) == DATASET_KEYS
        assert line["word"] == "cat" and line["countrycode"] == ""
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6} UTC", line["timestamp"])
        assert line["drawing"] == item["simplified"]
    assert [c["recognized"] for c in cats] == [True, False]  # top guess cat; no guesses sent
    (dog_line,) = iter_ndjson(out / "simplified" / "dog.ndjson")
    assert dog_line["recognized"] is False and dog_line["drawing"] == dog["simplified"]

    bitmaps = read_bitmaps(out / "numpy_bitmap" / "cat.npy")  # training's own reader checks dtype/shape
    assert bitmaps.shape == (2, 784)
    for row, item in zip(bitmaps, (cat1, cat2), strict=True):
        expected = render_simplified(from_dataset_format(item["simplified"]))
        np.testing.assert_array_equal(row.reshape(28, 28), expected)

    # Nothing about the player (or the token) in any file.
    everything = "".join(p.read_text(errors="replace") for p in out.rglob("*") if p.is_file())
    for secret in (cat1["delete_token"], hash_token(cat1["delete_token"]), cat1["created_at"], "delete_token"):
        assert secret not in everything

    # Deleting after an export and exporting again: the drawing is gone, and so is an emptied category.
    delete(db_client, cat2)
    delete(db_client, dog)
    assert main(["--database-url", database_url, "--out", str(out)]) == 0
    assert sorted(p.name for p in (out / "simplified").iterdir()) == ["cat.ndjson"]
    assert sorted(p.name for p in (out / "numpy_bitmap").iterdir()) == ["cat.npy"]
    assert [c["key_id"] for c in iter_ndjson(out / "simplified" / "cat.ndjson")] == [str(cat1["id"])]
    assert read_bitmaps(out / "numpy_bitmap" / "cat.npy").shape == (1, 784)


def test_empty_database_exports_nothing(db_client, database_url, tmp_path):
    assert main(["--database-url", database_url, "--out", str(tmp_path)]) == 0
    assert json.loads((tmp_path / "counts.json").read_text())["total"] == 0
    assert list((tmp_path / "simplified").iterdir()) == []


def test_unreachable_database_fails_clearly(tmp_path, capsys):
    assert main(["--database-url", f"sqlite:///{tmp_path}/missing.db", "--out", str(tmp_path / "o")]) == 1
    assert "no such file" in capsys.readouterr().err
    assert not (tmp_path / "missing.db").exists()  # not created by the attempt
    url = "postgresql+psycopg://nobody:secret@127.0.0.1:9/none"
    assert main(["--database-url", url, "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    assert "cannot be opened" in err and "nobody:***@127.0.0.1:9/none" in err and "secret" not in err


def test_safe_category():
    assert all(map(safe_category, ["cat", "hot dog", "The Eiffel Tower", "t-shirt", "Zoë"]))
    assert not any(map(safe_category, ["", ".", "..", "../x", "a/b", "a\\b", ".hidden", " cat"]))
