"""training.prepare and training.shards on real fixture drawings: what goes in comes out, once, in its split."""

from __future__ import annotations

import gzip
import json
import os
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from tests.utils.fixtures import FIXTURES, PAIR_CATEGORIES, every_stroke_source
from training import prepare, records, shards
from training.data import BITMAP_SIZE, SPLITS, DataError, cap_order, split_of, strokes_key


def official_folder(root: Path) -> Path:
    """numpy_bitmap/, simplified/ and raw/ of the three pair categories (the same 25 drawings each)."""
    for fmt in ("numpy_bitmap", "simplified", "raw"):
        (root / fmt).mkdir(parents=True)
    for cat in PAIR_CATEGORIES:
        shutil.copy(FIXTURES / "pairs" / f"{cat}.npy", root / "numpy_bitmap" / f"{cat}.npy")
        shutil.copy(FIXTURES / "pairs" / f"{cat}.simplified.ndjson.gz", root / "simplified" / f"{cat}.ndjson.gz")
        shutil.copy(FIXTURES / "pairs" / f"{cat}.raw.ndjson.gz", root / "raw" / f"{cat}.ndjson.gz")
    return root


def ndjson(name: str) -> list[dict]:
    return [json.loads(x) for x in gzip.decompress((FIXTURES / "pairs" / name).read_bytes()).splitlines()]


def read_records(paths: list[str]) -> list[bytes]:
    import tensorflow as tf

    return [r.numpy() for p in paths for r in tf.data.TFRecordDataset(p)]


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    root = official_folder(tmp_path_factory.mktemp("official"))
    out = tmp_path_factory.mktemp("shards")
    manifest = prepare.prepare(root, out, workers=1, shard_size=8, log=lambda *_: None)
    return root, out, manifest


def test_every_bitmap_lands_once_in_its_split(prepared):
    root, out, manifest = prepared
    info = manifest["kinds"]["bitmap"]
    assert info["classes"] == sorted(PAIR_CATEGORIES)
    prefix = records.bitmap_record_prefix()
    for cat in PAIR_CATEGORIES:
        rows = np.load(root / "numpy_bitmap" / f"{cat}.npy")
        expected = Counter(split_of(r.tobytes()) for r in rows)
        assert info["counts"][cat] == {s: expected[s] for s in SPLITS}
        for split in SPLITS:
            written = read_records([str(out / rel) for rel in info["shards"][cat][split]])
            got = sorted(r.removeprefix(prefix) for r in written)
            assert got == sorted(r.tobytes() for r in rows if split_of(r.tobytes()) == split)
            # Shards of 8 records: every file but the last of a split is full.
            sizes = [len(read_records([str(out / rel)])) for rel in info["shards"][cat][split]]
            assert all(n == 8 for n in sizes[:-1]) and 0 < sizes[-1] <= 8
    assert manifest["format_version"] == prepare.FORMAT_VERSION
    sources = info["sources"]
    assert len(sources) == 3 and all(len(s["sha256"]) == 64 for s in sources.values())


def test_the_fast_record_is_the_protobuf_record():
    rng = np.random.default_rng(0)
    row = rng.integers(0, 256, BITMAP_SIZE, dtype=np.uint8)
    assert records.bitmap_record_prefix() + row.tobytes() == records.bitmap_record(row)


def test_strokes_are_normalised_deduplicated_and_split_like_the_rnn(prepared):
    from sketch.drawing import Drawing
    from sketch.strokes import normalize, parse_strokes, to_dataset_format

    _, out, manifest = prepared
    info = manifest["kinds"]["strokes"]
    # raw/ holds drawings of simplified/ (same key_ids): each is kept once.
    for cat in PAIR_CATEGORIES:
        assert sum(info["counts"][cat].values()) == 25
        assert info["skipped"][cat] == {"same key_id": len(ndjson(f"{cat}.raw.ndjson.gz"))}
    lines = ndjson("cat.simplified.ndjson.gz")
    expected = {}
    for line in lines:
        strokes = normalize(parse_strokes(line["drawing"]))
        key = strokes_key(to_dataset_format(strokes))
        expected[key] = split_of(key)
    data = shards.ShardSet(out, "strokes", ["cat"])
    got = {}
    for split in SPLITS:
        for points, lengths, label in data.strokes(split).as_numpy_iterator():
            assert label == 0
            strokes = Drawing(points, lengths)
            got[strokes_key(to_dataset_format(strokes))] = split
    assert got == expected


@pytest.mark.parametrize("in_memory", [True, False], ids=["in memory", "streamed"])
def test_reader_gives_every_record_with_its_label(prepared, in_memory, monkeypatch):
    _, out, manifest = prepared
    if not in_memory:  # as a split too large for memory is read
        monkeypatch.setattr(shards, "IN_MEMORY_BYTES", 0)
    data = shards.ShardSet(out, "bitmap", ["dog", "cat"])
    assert data.classes == ["cat", "dog"]
    x, y = [], []
    for bx, by in data.bitmaps("train", 5, shuffle=True, seed=3):
        x.append(bx.numpy())
        y.append(by.numpy())
    x, y = np.concatenate(x), np.concatenate(y)
    assert len(y) == data.size("train") == sum(manifest["kinds"]["bitmap"]["counts"][c]["train"] for c in data.classes)
    for label, cat in enumerate(data.classes):
        rows = np.load(FIXTURES / "pairs" / f"{cat}.npy")
        train = sorted(r.tobytes() for r in rows if split_of(r.tobytes()) == "train")
        assert sorted(r.astype(np.uint8).tobytes() for r in x[y == label].reshape(-1, 784)) == train
    # Class weights from the manifest's counts are those of the labels themselves.
    from training.fitting import class_weights, weights_for_counts

    assert weights_for_counts(data.class_counts(), 0.5) == pytest.approx(class_weights(y, 2, 0.5))
    # Sample weights ride along when asked for.
    _, by, bw = next(iter(data.bitmaps("train", 64, weights={0: 1.0, 1: 2.0})))
    assert np.array_equal(bw.numpy(), np.where(by.numpy() == 0, 1.0, 2.0))


def test_parallel_workers_write_the_same_shards(prepared, tmp_path):
    root, out, manifest = prepared
    parallel = prepare.prepare(root, tmp_path, kinds=("bitmap",), workers=2, shard_size=8, log=lambda *_: None)
    assert parallel["kinds"]["bitmap"]["counts"] == manifest["kinds"]["bitmap"]["counts"]
    for cat, splits in manifest["kinds"]["bitmap"]["shards"].items():
        for split, files in splits.items():
            assert parallel["kinds"]["bitmap"]["shards"][cat][split] == files
            for rel in files:
                assert (tmp_path / rel).read_bytes() == (out / rel).read_bytes()


def test_resume_keeps_finished_shards_and_redoes_only_what_is_missing(tmp_path):
    root = official_folder(tmp_path / "official")
    out = tmp_path / "shards"
    first = prepare.prepare(root, out, kinds=("bitmap",), workers=1, shard_size=4, log=lambda *_: None)
    files = sorted(out.glob("bitmap/*/*.tfrecord"))
    before = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in files}
    # An interrupted run of "cat": its completion record and one shard are gone, a half-written shard is left.
    cat_shards = sorted(out.glob("bitmap/train/cat-*.tfrecord"))
    lost = cat_shards[1]
    lost.unlink()
    (out / "_done" / "bitmap" / "cat.json").unlink()
    (out / "bitmap" / "train" / "cat-00099.tfrecord.tmp-1").write_bytes(b"half")
    logs: list[str] = []
    second = prepare.prepare(root, out, kinds=("bitmap",), workers=1, shard_size=4, log=logs.append)
    assert "2 category files already current, 1 converted" in logs
    assert second["kinds"]["bitmap"]["counts"] == first["kinds"]["bitmap"]["counts"]
    for p, (mtime, content) in before.items():
        assert p.read_bytes() == content
        if p != lost:
            assert p.stat().st_mtime_ns == mtime, f"{p.name} was rewritten"
    listed = [rel for c in second["kinds"]["bitmap"]["shards"].values() for s in c.values() for rel in s]
    assert not any(".tmp" in rel for rel in listed)
    # An up-to-date folder converts nothing; a changed source is converted again.
    logs.clear()
    prepare.prepare(root, out, kinds=("bitmap",), workers=1, shard_size=4, log=logs.append)
    assert "3 category files already current, 0 converted" in logs
    dog = root / "numpy_bitmap" / "dog.npy"
    np.save(dog, np.load(dog)[:10])
    logs.clear()
    third = prepare.prepare(root, out, kinds=("bitmap",), workers=1, shard_size=4, log=logs.append)
    assert "2 category files already current, 1 converted" in logs
    assert sum(third["kinds"]["bitmap"]["counts"]["dog"].values()) == 10
    assert len(list(out.glob("bitmap/*/dog-*.tfrecord"))) == sum(
        len(f) for f in third["kinds"]["bitmap"]["shards"]["dog"].values()
    )


def test_shards_of_a_cap_or_a_subset(tmp_path):
    root = official_folder(tmp_path / "official")
    manifest = prepare.prepare(root, tmp_path / "s", ["dog"], ("bitmap",), max_per_class=7, workers=1, log=print)
    assert manifest["kinds"]["bitmap"]["classes"] == ["dog"]
    assert sum(manifest["kinds"]["bitmap"]["counts"]["dog"].values()) == 7
    with pytest.raises(DataError, match=r"unknown categories \['unicorn'\]; available: airplane, cat, dog"):
        prepare.prepare(root, tmp_path / "s", ["unicorn"], ("bitmap",), workers=1)
    with pytest.raises(DataError, match=r"unknown categories \['cat'\]; available: dog"):
        shards.ShardSet(tmp_path / "s", "bitmap", ["cat"])
    with pytest.raises(DataError, match=r"no manifest\.json"):
        shards.ShardSet(tmp_path / "nothing", "bitmap")


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("bad.npy", lambda p: np.save(p, np.zeros((3, 784), np.float32)), r"bad\.npy: expected uint8 \(N, 784\)"),
        ("short.npy", lambda p: np.save(p, np.zeros((3, 10), np.uint8)), r"short\.npy: expected uint8 \(N, 784\)"),
        (
            "cut.npy",
            lambda p: (np.save(p, np.zeros((4, 784), np.uint8)), os.truncate(p, p.stat().st_size - 900)),
            r"cut\.npy: truncated: the header says 4 drawings, the data ends after 2",
        ),
        ("junk.npy", lambda p: p.write_bytes(b"not numpy at all"), r"junk\.npy: not a readable \.npy file"),
    ],
)
def test_bad_bitmap_files_are_named(tmp_path, name, content, message):
    (tmp_path / "numpy_bitmap").mkdir()
    content(tmp_path / "numpy_bitmap" / name)
    with pytest.raises(DataError, match=message):
        prepare.prepare(tmp_path, tmp_path / "out", kinds=("bitmap",), workers=1, log=lambda *_: None)
    assert not list((tmp_path / "out").glob("**/*.tfrecord")), "no shard of a bad file may be left"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", r"cat\.ndjson:2: malformed JSON"),
        ('{"drawing": [[[1, 2], [3]]]}', r"cat\.ndjson:2: stroke 0: x, y \(and t\) have different lengths"),
        ('{"drawing": 5}', r"cat\.ndjson:2: no valid 'drawing'"),
    ],
)
def test_bad_ndjson_lines_are_named_with_their_line(tmp_path, line, message):
    (tmp_path / "simplified").mkdir()
    good = '{"key_id": "1", "drawing": [[[0, 10, 20], [0, 10, 0]]]}'
    (tmp_path / "simplified" / "cat.ndjson").write_text(good + "\n" + line + "\n")
    with pytest.raises(DataError, match=message):
        prepare.prepare(tmp_path, tmp_path / "out", kinds=("strokes",), workers=1, log=lambda *_: None)


def test_train_reuses_a_prepared_folder_and_says_what_is_missing(prepared, tmp_path):
    _, out, _ = prepared
    assert records.is_shard_dir(out) and not records.is_shard_dir(FIXTURES)
    assert prepare.ensure_shards(out, "bitmap") == str(out)
    with pytest.raises(DataError, match="no numpy_bitmap/ folder with data files"):
        prepare.ensure_shards(tmp_path, "bitmap", shards_dir=tmp_path / "s")


def shard_keys(data: shards.ShardSet, split: str) -> list[tuple[str, bytes]]:
    from sketch.drawing import Drawing
    from sketch.strokes import to_dataset_format

    return sorted(
        (data.classes[label], strokes_key(to_dataset_format(Drawing(points, lengths))))
        for points, lengths, label in data.strokes(split).as_numpy_iterator()
    )


def test_stroke_shards_read_every_rnn_source_once(tmp_path):
    from training.stroke_data import load_stroke_data

    root = every_stroke_source(tmp_path / "official")
    manifest = prepare.prepare(root, tmp_path / "s", kinds=("strokes",), workers=1, log=lambda *_: None)
    info = manifest["kinds"]["strokes"]
    assert info["classes"] == ["airplane", "cat", "dog", "pig"]
    for cat in PAIR_CATEGORIES:
        # raw/ repeats simplified/ by key_id, simplified_kaggle/ by content: 25 drawings, once each.
        assert sum(info["counts"][cat].values()) == 25
        assert info["skipped"][cat] == {"same key_id": len(ndjson(f"{cat}.raw.ndjson.gz")), "identical strokes": 25}
        assert info["per_source"][cat] == {"simplified": 25}
    # pig: 6 sketch-rnn drawings, 4 strokes_extra lines and the copy of the first .npz drawing.
    assert info["per_source"]["pig"] == {"sketchrnn": 6, "strokes_extra": 4}
    assert info["skipped"]["pig"] == {"identical strokes": 1}
    assert len(info["sources"]) == 3 * 3 + 2 and info["strokes_version"] == records.STROKES_VERSION
    # The in-memory loader (training.compare's) reads the same drawings into the same splits.
    memory = load_stroke_data(root, max_per_class=None, min_per_class=1)
    data = shards.ShardSet(tmp_path / "s", "strokes")
    for split in SPLITS:
        assert shard_keys(data, split) == sorted((e.category, e.key) for e in memory.examples[split])
    assert data.counts() == memory.counts()


def test_a_stroke_cap_keeps_the_drawings_the_rnn_always_kept(tmp_path):
    from training.stroke_data import load_stroke_data

    root = every_stroke_source(tmp_path / "official")
    prepare.prepare(root, tmp_path / "s", kinds=("strokes",), max_per_class=7, workers=1, log=lambda *_: None)
    data = shards.ShardSet(tmp_path / "s", "strokes")
    memory = load_stroke_data(root, max_per_class=7, min_per_class=1)
    assert all(sum(n.values()) == 7 for n in data.counts().values())
    for split in SPLITS:
        assert shard_keys(data, split) == sorted((e.category, e.key) for e in memory.examples[split])
    # The 7 of smallest cap order among all of a category's drawings, wherever they are in its files.
    everything = load_stroke_data(root, max_per_class=None, min_per_class=1)
    for cat in data.classes:
        keys = sorted((e.key for s in SPLITS for e in everything.examples[s] if e.category == cat), key=cap_order)
        assert sorted(k for split in SPLITS for c, k in shard_keys(data, split) if c == cat) == sorted(keys[:7])


def test_stroke_shards_of_an_older_version_are_prepared_again(tmp_path):
    root = every_stroke_source(tmp_path / "official")
    out = tmp_path / "s"
    prepare.prepare(root, out, kinds=("strokes",), workers=1, log=lambda *_: None)
    # As version 1 left them: no strokes_version in the manifest nor in the finished categories' options.
    manifest = json.loads((out / "manifest.json").read_text())
    del manifest["kinds"]["strokes"]["strokes_version"]
    (out / "manifest.json").write_text(json.dumps(manifest))
    for done in (out / "_done" / "strokes").glob("*.json"):
        entry = json.loads(done.read_text())
        del entry["options"]["strokes_version"]
        done.write_text(json.dumps(entry))
    with pytest.raises(DataError, match=r"stroke shards of an older version .* prepare them again"):
        shards.ShardSet(out, "strokes")
    logs: list[str] = []
    prepare.prepare(root, out, kinds=("strokes",), workers=1, log=logs.append)
    assert "0 category files already current, 4 converted" in logs
    assert shards.ShardSet(out, "strokes").classes == ["airplane", "cat", "dog", "pig"]


def bad_npz(path: Path, drawings: list) -> None:
    test = np.empty(len(drawings), dtype=object)
    test[:] = drawings
    np.savez(path, train=np.empty(0, dtype=object), valid=np.empty(0, dtype=object), test=test)


@pytest.mark.parametrize(
    ("folder", "name", "write", "message"),
    [
        ("sketchrnn", "pig.npz", lambda p: p.write_bytes(b"not an npz"), r"pig\.npz: not a sketch-rnn \.npz"),
        (
            "sketchrnn",
            "pig.npz",
            lambda p: np.savez(p, drawings=np.zeros((2, 3))),
            r"pig\.npz: not a sketch-rnn \.npz with train/valid/test",
        ),
        (
            "sketchrnn",
            "pig.npz",
            lambda p: bad_npz(p, [np.array([[1, 2, 0], [3, 4, 1]], np.int16), np.zeros((4, 2), np.int16)]),
            r"pig\.npz: test drawing 1: stroke-3 must be a non-empty \(n, 3\) array",
        ),
        (
            "strokes_extra",
            "pig.ndjson",
            lambda p: p.write_text(
                '{"drawing": [[[0, 5], [0, 5]]]}\n{"drawing": [[[0, 5], [0, 5]]], "format": "svg"}\n'
            ),
            r"pig\.ndjson:2: unknown stroke format 'svg'",
        ),
        (
            "simplified_kaggle",
            "pig.ndjson",
            lambda p: p.write_text('{"drawing": [[[0, 5], [0, 5]]]}\n{"drawing": [[[0, "x"], [0, 5]]]}\n'),
            r"pig\.ndjson:2: stroke 0: coordinates must be numbers",
        ),
    ],
    ids=["junk-npz", "npz-without-splits", "npz-bad-drawing", "unknown-format", "bad-kaggle-line"],
)
def test_bad_stroke_sources_are_named(tmp_path, folder, name, write, message):
    (tmp_path / folder).mkdir()
    write(tmp_path / folder / name)
    with pytest.raises(DataError, match=message):
        prepare.prepare(tmp_path, tmp_path / "out", kinds=("strokes",), workers=1, log=lambda *_: None)
    assert not list((tmp_path / "out").glob("**/*.tfrecord")), "no shard of a bad file may be left"
