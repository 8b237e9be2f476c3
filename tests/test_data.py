import gzip
import json

import numpy as np
import pytest

from tests.utils.fixtures import FIXTURES
from training.data import (
    DataError,
    category_files,
    iter_ndjson,
    load_bitmap_splits,
    read_bitmaps,
    select_categories,
    split_of,
)


@pytest.fixture
def data_dir(tmp_path):
    """A miniature data folder in the official layout, from the committed real drawings."""
    (tmp_path / "numpy_bitmap").mkdir()
    (tmp_path / "simplified").mkdir()
    for cat in ("cat", "dog", "airplane"):
        np.save(tmp_path / "numpy_bitmap" / f"{cat}.npy", np.load(FIXTURES / "pairs" / f"{cat}.npy"))
        (tmp_path / "simplified" / f"{cat}.ndjson.gz").write_bytes(
            (FIXTURES / "pairs" / f"{cat}.simplified.ndjson.gz").read_bytes()
        )
    return tmp_path


def test_bitmap_reader_and_split_are_deterministic_and_disjoint(data_dir):
    a = load_bitmap_splits(data_dir)
    b = load_bitmap_splits(data_dir)
    assert a.classes == ["airplane", "cat", "dog"]
    assert sum(len(a.y[s]) for s in a.y) == 75
    for s in a.y:
        assert np.array_equal(a.x[s], b.x[s]) and np.array_equal(a.y[s], b.y[s])
    seen = {s: {r.tobytes() for r in a.x[s]} for s in a.x}
    assert not seen["train"] & seen["test"] and not seen["train"] & seen["val"]


def test_split_does_not_depend_on_caps(data_dir):
    full = load_bitmap_splits(data_dir)
    capped = load_bitmap_splits(data_dir, max_per_class=10)
    full_test = {r.tobytes() for r in full.x["test"]}
    assert {r.tobytes() for r in capped.x["test"]} <= full_test
    assert capped.counts()["cat"]["train"] + capped.counts()["cat"]["val"] + capped.counts()["cat"]["test"] == 10


def test_split_proportions():
    buckets = [split_of(i.to_bytes(4, "little")) for i in range(20000)]
    assert 0.08 < buckets.count("test") / len(buckets) < 0.12
    assert 0.08 < buckets.count("val") / len(buckets) < 0.12


def test_unknown_category_names_what_exists(data_dir):
    with pytest.raises(DataError, match=r"unknown categories \['unicorn'\]; available: airplane, cat, dog"):
        select_categories(category_files(data_dir, "numpy_bitmap"), ["cat", "unicorn"])


def test_corrupt_and_wrong_shape_bitmaps_are_named(tmp_path):
    bad = tmp_path / "bad.npy"
    bad.write_bytes(b"\x93NUMPY garbage")
    with pytest.raises(DataError, match=r"bad\.npy"):
        read_bitmaps(bad)
    wrong = tmp_path / "wrong.npy"
    np.save(wrong, np.zeros((3, 10), dtype=np.uint8))
    with pytest.raises(DataError, match=r"wrong.npy: expected uint8 \(N, 784\)"):
        read_bitmaps(wrong)
    pickled = tmp_path / "pickled.npy"
    np.save(pickled, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(DataError, match=r"pickled\.npy"):
        read_bitmaps(pickled)


@pytest.mark.parametrize("gz", [True, False])
def test_ndjson_reader_plain_and_gzip(data_dir, tmp_path, gz):
    src = data_dir / "simplified" / "cat.ndjson.gz"
    path = src
    if not gz:
        path = tmp_path / "cat.ndjson"
        path.write_bytes(gzip.decompress(src.read_bytes()))
    items = list(iter_ndjson(path, limit=5))
    assert len(items) == 5 and items[0]["word"] == "cat"


def test_raw_format_is_read(tmp_path):
    path = FIXTURES / "pairs" / "dog.raw.ndjson.gz"
    item = next(iter_ndjson(path))
    assert len(item["drawing"][0]) == 3  # x, y, t


def test_malformed_line_is_reported_with_file_and_line(tmp_path):
    path = tmp_path / "cat.ndjson"
    good = json.dumps({"word": "cat", "drawing": [[[0, 1], [0, 1]]]})
    path.write_text(good + "\n" + good + "\n{oops\n")
    with pytest.raises(DataError, match=r"cat.ndjson:3: malformed JSON"):
        list(iter_ndjson(path))
    path.write_text(good + "\n" + json.dumps({"word": "cat"}) + "\n")
    with pytest.raises(DataError, match=r"cat.ndjson:2: no valid 'drawing'"):
        list(iter_ndjson(path))
