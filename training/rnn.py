"""The stroke RNN: pen-stroke sequences -> category, trained with ``python -m training.train rnn``.

    python -m training.train rnn --data-dir ../shared/quickdraw          # the shipped RNN

Reads top to bottom: settings -> data (every stroke source, deduplicated, split by content hash)
-> model (conv1d then bidirectional LSTM, after TensorFlow's Quick, Draw! RNN tutorial, smaller)
-> train (validation, early stopping, best weights restored) -> evaluate on the test split ->
export (SavedModel + checked ONNX copy + metadata + report) -> choose the ensemble weight and
compare with the CNN (``training.compare``) when the store holds a CNN.

The exported model takes zero-padded sequences, float32 ``(batch, time, 3)`` rows
``(dx, dy, end_of_stroke)`` from ``sketch.sequence.to_sequence``. It finds each sequence's length
from the padding itself (an all-zero row is padding and nothing else), and every layer is written
so that padding cannot change a prediction: convolutions are re-masked after each layer, the
backward LSTM reads each sequence reversed *within its length*, and the pooling is a masked mean.
No ``Masking`` layer: tf2onnx turns these plain LSTMs into ONNX ``LSTM`` nodes (one thread: about
1.3 ms for a typical drawing, 3.5 ms at the 200-row cap), and the ONNX copy is checked against the
SavedModel on the whole test split at export.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sketch.sequence import FEATURES, MAX_LEN, normalized_to_sequence, pad_batch, stroke3_to_strokes
from sketch.strokes import SIMPLIFIED_SIDE, normalize, parse_strokes, to_dataset_format
from training import data as qd

SEED = 1337
# Stroke folders of ../shared/quickdraw, in the order their drawings are taken (the first copy of
# a drawing wins): official lines with key_ids first, then the copies without.
SOURCES = ("simplified", "raw", "simplified_kaggle", "sketchrnn", "strokes_extra")


# --------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------


@dataclass
class StrokeExample:
    category: str
    source: str
    strokes: list[np.ndarray]  # normalised, dataset 0-255 space
    key: bytes  # content of the normalised drawing: duplicates share it, the split hashes it

    @property
    def split(self) -> str:
        return qd.split_of(self.key)


@dataclass
class StrokeData:
    classes: list[str]
    examples: dict[str, list[StrokeExample]]  # per split
    sources: dict[str, dict[str, int]] = field(default_factory=dict)  # per class: drawings per source
    duplicates: dict[str, int] = field(default_factory=dict)  # dropped, by reason
    files: list[Path] = field(default_factory=list)

    def labels(self, split: str) -> np.ndarray:
        index = {c: i for i, c in enumerate(self.classes)}
        return np.array([index[e.category] for e in self.examples[split]], dtype=np.int32)

    def counts(self) -> dict[str, dict[str, int]]:
        per: dict[str, Counter] = {c: Counter() for c in self.classes}
        for s in qd.SPLITS:
            for e in self.examples[s]:
                per[e.category][s] += 1
        return {c: {s: per[c][s] for s in qd.SPLITS} for c in self.classes}


def _read_source(data_dir: Path, source: str, category: str, path: Path) -> Iterator[tuple[str | None, list]]:
    """``(key_id or None, strokes)`` for each drawing of one source file; strokes as ``parse_strokes`` wants."""
    if source == "sketchrnn":
        try:
            with np.load(path, allow_pickle=True, encoding="latin1") as npz:
                items = [np.asarray(a) for split in ("train", "valid", "test") for a in npz[split]]
        except (OSError, ValueError, KeyError) as exc:
            raise qd.DataError(f"{path}: not a sketch-rnn .npz with train/valid/test ({exc})") from None
        for item in items:
            yield None, [s.T.tolist() for s in stroke3_to_strokes(item)]
        return
    for item in qd.iter_ndjson(path):
        fmt = item.get("format")
        if fmt not in (None, "sketchrnn-stroke3-abs"):
            raise qd.DataError(f"{path}: unknown stroke format {fmt!r}")
        key_id = item.get("key_id")
        yield (str(key_id) if key_id is not None else None), item["drawing"]


def _category_files(data_dir: Path) -> dict[str, dict[str, Path]]:
    """``{source: {category: file}}`` for the stroke folders that exist (sketchrnn files are .npz)."""
    found: dict[str, dict[str, Path]] = {}
    for source in SOURCES:
        folder = Path(data_dir) / source
        if not folder.is_dir():
            continue
        if source == "sketchrnn":
            found[source] = {p.name.removesuffix(".npz"): p for p in sorted(folder.glob("*.npz"))}
        else:
            found[source] = qd.category_files(data_dir, source)
    if not found:
        raise qd.DataError(f"no stroke folder ({', '.join(SOURCES)}) in {data_dir}")
    return found


def load_stroke_data(
    data_dir: Path,
    categories: list[str] | None = None,
    max_per_class: int = 1000,
    min_per_class: int = 10,
    workers: int = 1,
) -> StrokeData:
    """Every stroke drawing of every source, deduplicated, capped per class and split by content.

    Duplicates: the same ``key_id`` (simplified and raw lines of one drawing), then the same
    normalised strokes (a drawing copied into two sources, e.g. the Kaggle and official files).
    The cap keeps a class's drawings with the smallest content hashes, so it is deterministic and
    leaves the split proportions alone. Classes with fewer than ``min_per_class`` drawings are left out.
    """
    by_source = _category_files(data_dir)
    available = sorted({c for files in by_source.values() for c in files})
    wanted = qd.select_categories({c: Path() for c in available}, categories)
    duplicates: Counter = Counter()
    raw_items: dict[str, list[tuple[str, list]]] = defaultdict(list)
    files: list[Path] = []
    for category in wanted:
        seen_ids: set[str] = set()
        seen_raw: set[bytes] = set()
        for source, cat_files in by_source.items():
            if category not in cat_files:
                continue
            files.append(cat_files[category])
            for key_id, drawing in _read_source(data_dir, source, category, cat_files[category]):
                if key_id is not None:
                    if key_id in seen_ids:
                        duplicates["same key_id"] += 1
                        continue
                    seen_ids.add(key_id)
                raw_key = qd.strokes_key(drawing)
                if raw_key in seen_raw:
                    duplicates["identical strokes"] += 1
                    continue
                seen_raw.add(raw_key)
                raw_items[category].append((source, drawing))

    jobs = [(c, s, d) for c, items in raw_items.items() for s, d in items]
    if workers > 1:
        from multiprocessing import get_context

        with get_context("fork").Pool(workers) as pool:
            prepared = pool.map(_prepare_one, jobs, chunksize=64)
    else:
        prepared = [_prepare_one(j) for j in jobs]

    per_class: dict[str, dict[bytes, StrokeExample]] = defaultdict(dict)
    for (category, source, _), result in zip(jobs, prepared, strict=True):
        if result is None:
            duplicates["unusable (no points)"] += 1
            continue
        strokes, key = result
        if key in per_class[category]:
            duplicates["same normalised strokes"] += 1
            continue
        per_class[category][key] = StrokeExample(category, source, strokes, key)
    # A drawing filed under two categories cannot teach either: drop every copy.
    owners: dict[bytes, set[str]] = defaultdict(set)
    for category, items in per_class.items():
        for key in items:
            owners[key].add(category)
    for key, cats in owners.items():
        if len(cats) > 1:
            for c in cats:
                del per_class[c][key]
                duplicates["same drawing in two categories"] += 1

    classes = sorted(c for c, items in per_class.items() if len(items) >= min_per_class)
    examples: dict[str, list[StrokeExample]] = {s: [] for s in qd.SPLITS}
    sources: dict[str, dict[str, int]] = {}
    for c in classes:
        kept = [per_class[c][k] for k in sorted(per_class[c], key=_hash_order)[:max_per_class]]
        sources[c] = dict(Counter(e.source for e in kept))
        for e in kept:
            examples[e.split].append(e)
    if not classes:
        raise qd.DataError(f"no category has {min_per_class} stroke drawings in {data_dir}")
    return StrokeData(classes, examples, sources, dict(duplicates), files)


def _hash_order(key: bytes) -> bytes:
    import hashlib

    return hashlib.blake2b(key, digest_size=8, person=b"cap").digest()


def _prepare_one(job: tuple[str, str, list]) -> tuple[list[np.ndarray], bytes] | None:
    """One drawing -> normalised strokes and its content key (None when it has no point)."""
    _, _, drawing = job
    try:
        strokes = normalize(parse_strokes(drawing))
    except ValueError:
        return None
    return strokes, qd.strokes_key(to_dataset_format(strokes))


def augment(strokes: list[np.ndarray], rng: np.random.Generator) -> list[np.ndarray]:
    """A plausible other hand: random stretch, shear and small turn, then the usual normalisation.

    No mirroring: the order and direction of the strokes is what this model reads, and people
    draw with a handedness.
    """
    angle = rng.uniform(-0.2, 0.2)
    c, s = np.cos(angle), np.sin(angle)
    stretch = np.diag(rng.uniform(0.75, 1.25, size=2))
    shear = np.array([[1.0, rng.uniform(-0.2, 0.2)], [rng.uniform(-0.2, 0.2), 1.0]])
    matrix = np.array([[c, -s], [s, c]]) @ shear @ stretch
    moved = [(st - SIMPLIFIED_SIDE / 2) @ matrix.T for st in strokes]
    return normalize(moved)


def _augmented_sequence(job: tuple[list[np.ndarray], int, int]) -> np.ndarray:
    strokes, seed, max_len = job
    return normalized_to_sequence(augment(strokes, np.random.default_rng(seed)), max_len)


def augmented_sequences(
    examples: list[StrokeExample], copies: int, seed: int, max_len: int = MAX_LEN, workers: int = 1
) -> list[np.ndarray]:
    """``copies`` augmented sequences of every example (copy by copy), reproducible from ``seed``."""
    jobs = [
        (e.strokes, seed * 1_000_003 + c * len(examples) + i, max_len)
        for c in range(copies)
        for i, e in enumerate(examples)
    ]
    if workers > 1 and jobs:
        from multiprocessing import get_context

        with get_context("fork").Pool(workers) as pool:
            return pool.map(_augmented_sequence, jobs, chunksize=256)
    return [_augmented_sequence(j) for j in jobs]


def sequences_for(examples: list[StrokeExample], max_len: int = MAX_LEN) -> list[np.ndarray]:
    return [normalized_to_sequence(e.strokes, max_len) for e in examples]


# --------------------------------------------------------------------------------------------
# Model
# --------------------------------------------------------------------------------------------


def _layers():
    """Keras layers that keep zero padding harmless (built lazily: no TensorFlow import at module load)."""
    import keras
    from keras import layers, ops

    @keras.saving.register_keras_serializable("deepdraw")
    class SequenceMask(layers.Layer):
        """1.0 for a real row, 0.0 for padding (an all-zero row), shape (batch, time, 1)."""

        def call(self, x):
            return ops.cast(ops.any(ops.not_equal(x, 0.0), axis=-1, keepdims=True), x.dtype)

    @keras.saving.register_keras_serializable("deepdraw")
    class ReverseWithinLength(layers.Layer):
        """Reverse each sequence's real rows and leave its padding at the end (tf.reverse_sequence)."""

        def call(self, x, mask):
            steps = ops.shape(x)[1]
            length = ops.cast(ops.sum(mask, axis=1), "int32")  # (batch, 1)
            position = ops.expand_dims(ops.arange(steps, dtype="int32"), 0)  # (1, time)
            index = ops.where(position < length, length - 1 - position, position)
            return ops.take_along_axis(x, ops.expand_dims(index, -1), axis=1)

    @keras.saving.register_keras_serializable("deepdraw")
    class MaskedMean(layers.Layer):
        """Mean over the real rows only."""

        def call(self, x, mask):
            return ops.sum(x * mask, axis=1) / ops.maximum(ops.sum(mask, axis=1), 1.0)

    return SequenceMask, ReverseWithinLength, MaskedMean


def make_rnn(
    num_classes: int,
    conv: tuple[tuple[int, int], ...] = ((48, 5), (64, 5), (96, 3)),
    lstm_units: int = 96,
    lstm_layers: int = 2,
    dropout: float = 0.3,
):
    """Conv1d (local shape of the pen path) then bidirectional LSTMs (the order of the strokes).

    The tutorial's model (3 conv1d, 3 bi-LSTM of 128) shrunk to two bi-LSTM layers of 96 so it trains in
    about a quarter of an hour on 2 CPU cores.
    """
    import keras
    from keras import layers

    SequenceMask, ReverseWithinLength, MaskedMean = _layers()
    inputs = keras.Input((None, FEATURES), name="strokes")
    mask = SequenceMask(name="mask")(inputs)
    x = inputs
    for i, (filters, width) in enumerate(conv):
        # "same" convolutions pad with zeros, exactly like the batch padding: re-masking after
        # each layer keeps padded rows at zero, so the next layer sees the same thing either way.
        x = layers.Conv1D(filters, width, padding="same", activation="relu", name=f"conv{i + 1}")(x)
        x = layers.Multiply(name=f"conv{i + 1}_masked")([x, mask])
        if dropout:
            x = layers.Dropout(dropout / 2, name=f"conv{i + 1}_dropout")(x)
    reverse = ReverseWithinLength(name="reverse")
    for i in range(lstm_layers):
        last = i == lstm_layers - 1
        forward = layers.LSTM(lstm_units, return_sequences=True, name=f"lstm{i + 1}_forward")(x)
        backward = layers.LSTM(lstm_units, return_sequences=True, name=f"lstm{i + 1}_backward")(reverse(x, mask))
        if last:
            x = layers.Concatenate(name="pooled")(
                [MaskedMean(name="forward_mean")(forward, mask), MaskedMean(name="backward_mean")(backward, mask)]
            )
        else:
            # Put the backward outputs back in drawing order before the next layer reads both.
            x = layers.Concatenate(name=f"lstm{i + 1}")([forward, reverse(backward, mask)])
            x = layers.Multiply(name=f"lstm{i + 1}_masked")([x, mask])
    if dropout:
        x = layers.Dropout(dropout, name="dropout")(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="probabilities")(x)
    return keras.Model(inputs, outputs, name="deepdraw_rnn")


# --------------------------------------------------------------------------------------------
# Batches and prediction
# --------------------------------------------------------------------------------------------


def length_batches(lengths: np.ndarray, batch_size: int, rng: np.random.Generator | None) -> list[np.ndarray]:
    """Indices in batches of similar length (little padding); shuffled when ``rng`` is given."""
    order = rng.permutation(len(lengths)) if rng is not None else np.arange(len(lengths))
    # Sort within windows of 20 batches: similar lengths together, still a different mix every epoch.
    window = batch_size * 20
    batches = []
    for start in range(0, len(order), window):
        chunk = order[start : start + window]
        chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
        batches += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
    if rng is not None:
        rng.shuffle(batches)
    return batches


def predict_sequences(run, sequences: list[np.ndarray], batch_size: int = 256) -> np.ndarray:
    """Probabilities for every sequence, through ``run(padded_batch) -> probs`` (Keras, SavedModel or ONNX)."""
    lengths = np.array([len(s) for s in sequences])
    out: np.ndarray | None = None
    for idx in length_batches(lengths, batch_size, None):
        probs = np.asarray(run(pad_batch([sequences[i] for i in idx])))
        if out is None:
            out = np.zeros((len(sequences), probs.shape[1]), dtype=np.float32)
        out[idx] = probs
    return out if out is not None else np.zeros((0, 0), dtype=np.float32)


def check_onnx(out_dir: Path, sequences: list[np.ndarray], tolerance: float = 1e-4) -> float:
    """Largest difference between the SavedModel and its ONNX copy on ``sequences``; raises above tolerance."""
    import onnxruntime as ort
    import tensorflow as tf

    loaded = tf.saved_model.load(str(out_dir / "saved_model"))  # keep a reference: serve() needs its variables
    session = ort.InferenceSession(str(out_dir / "model.onnx"), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    saved = predict_sequences(lambda x: loaded.serve(x).numpy(), sequences)
    onnx = predict_sequences(lambda x: session.run(None, {name: x})[0], sequences)
    diff = float(np.abs(saved - onnx).max())
    if diff > tolerance:
        raise RuntimeError(f"{out_dir}/model.onnx differs from the SavedModel by {diff:.2e}")
    return diff


# --------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------


def cosine_over_budget(base_lr: float, total_steps: int, budget_s: float):
    """Cosine learning-rate decay over whichever runs out first, the steps or the wall-clock budget.

    A step-based schedule would still be near its peak when the time budget stops training on a
    slow machine; this one always ends at a low rate.
    """
    import keras

    class _Callback(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.start, self.step = time.monotonic(), 0

        def on_train_batch_begin(self, batch, logs=None):
            done = max(self.step / total_steps, (time.monotonic() - self.start) / budget_s)
            self.model.optimizer.learning_rate.assign(base_lr * 0.5 * (1 + np.cos(np.pi * min(done, 1.0))))
            self.step += 1

    return _Callback()


def train_rnn(args: argparse.Namespace) -> Path:
    from training.evaluate import evaluate, summary, write_report
    from training.export import export_model, new_version, run_metadata
    from training.train import class_weights

    rng = np.random.default_rng(args.seed)
    t0 = time.monotonic()
    data = load_stroke_data(args.data_dir, args.categories, args.max_per_class, args.min_per_class, args.workers)
    classes = data.classes
    print(
        f"{len(classes)} classes; "
        + ", ".join(f"{s}: {len(data.examples[s])}" for s in qd.SPLITS)
        + f"; duplicates dropped: {data.duplicates}"
    )
    y = {s: data.labels(s) for s in qd.SPLITS}
    seqs = {s: sequences_for(data.examples[s], args.max_len) for s in qd.SPLITS}
    train_x = list(seqs["train"]) + augmented_sequences(
        data.examples["train"], args.augment, args.seed, args.max_len, args.workers
    )
    train_y = np.tile(y["train"], 1 + args.augment)
    print(f"train sequences with {args.augment} augmented copies: {len(train_x)} ({time.monotonic() - t0:.0f} s)")

    # TensorFlow only now: the worker processes above are forked from a process without its threads.
    import keras
    import tensorflow as tf

    from training.train import TimeBudget

    keras.utils.set_random_seed(args.seed)
    weights = class_weights(y["train"], len(classes), args.class_weight_power)
    sample_weight = np.array([weights[int(label)] for label in train_y], dtype=np.float32)
    lengths = np.array([len(s) for s in train_x])

    def train_batches():
        for idx in length_batches(lengths, args.batch_size, rng):
            yield pad_batch([train_x[i] for i in idx]), train_y[idx], sample_weight[idx]

    def eval_batches(split):
        lens = np.array([len(s) for s in seqs[split]])
        for idx in length_batches(lens, 256, None):
            yield pad_batch([seqs[split][i] for i in idx]), y[split][idx]

    spec_x = tf.TensorSpec((None, None, FEATURES), tf.float32)
    spec_y = tf.TensorSpec((None,), tf.int32)
    # Known cardinality: Keras then counts steps instead of warning that the generator ran out.
    n_batches = len(length_batches(lengths, args.batch_size, None))
    train_ds = (
        tf.data.Dataset.from_generator(
            train_batches, output_signature=(spec_x, spec_y, tf.TensorSpec((None,), tf.float32))
        )
        .apply(tf.data.experimental.assert_cardinality(n_batches))
        .prefetch(2)
    )
    val_batches = len(length_batches(np.array([len(x) for x in seqs["val"]]), 256, None))
    val_ds = (
        tf.data.Dataset.from_generator(lambda: eval_batches("val"), output_signature=(spec_x, spec_y))
        .apply(tf.data.experimental.assert_cardinality(val_batches))
        .cache()
    )

    model = make_rnn(len(classes), lstm_units=args.lstm_units, lstm_layers=args.lstm_layers)
    model.compile(
        optimizer=keras.optimizers.Adam(args.learning_rate, clipnorm=1.0),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy", keras.metrics.SparseTopKCategoricalAccuracy(5, name="top5")],
    )
    model.summary(print_fn=lambda line, **_: print(line) if "params" in line.lower() else None)
    history = model.fit(
        train_ds,
        validation_data=val_ds,
        epochs=args.epochs,
        callbacks=[
            keras.callbacks.EarlyStopping("val_accuracy", patience=3, restore_best_weights=True),
            TimeBudget(args.time_budget_min).callback,
            cosine_over_budget(args.learning_rate, n_batches * args.epochs, args.time_budget_min * 60),
        ],
        verbose=2,
    )
    train_minutes = (time.monotonic() - t0) / 60

    probs = predict_sequences(lambda x: model(x, training=False).numpy(), seqs["test"])
    result = evaluate(probs, y["test"], classes)
    print(summary(result, train_minutes))

    version = new_version()
    out_dir = Path(args.output_dir) / "rnn" / version
    metadata = {
        "kind": "rnn",
        "name": "rnn",
        "version": version,
        "architecture": f"conv1d x3 + {args.lstm_layers} bi-LSTM {args.lstm_units}",
        "classes": classes,
        "input": {
            "name": "strokes",
            "shape": [None, None, FEATURES],
            "dtype": "float32",
            "description": "zero-padded rows (dx, dy, end_of_stroke) from sketch.sequence.to_sequence: "
            "dataset-normalised strokes / 255, an all-zero row is padding",
            "max_len": args.max_len,
        },
        "output": {"name": "probabilities", "shape": [None, len(classes)]},
        "counts": data.counts(),
        **run_metadata(result, history.history, model, args, train_minutes),
        "data": {
            "format": "strokes: " + ", ".join(SOURCES),
            "sources_per_class": data.sources,
            "duplicates_dropped": data.duplicates,
            "manifest_hash": qd.manifest_hash(data.files),
            "split": f"content hash of the normalised strokes: {qd.TEST_PERCENT}% test, "
            f"{qd.VAL_PERCENT}% val, rest train",
        },
    }
    export_model(model, out_dir, json.loads(json.dumps(metadata, default=str)))
    diff = check_onnx(out_dir, seqs["test"])
    meta_path = out_dir / "metadata.json"
    meta = json.loads(meta_path.read_text())
    meta["onnx_check"] = {"split": "test", "n": len(seqs["test"]), "max_abs_diff": diff}
    meta_path.write_text(json.dumps(meta, indent=2) + "\n")
    write_report(result, classes, out_dir / "report", history.history)
    print(f"exported {out_dir} (ONNX matches the SavedModel within {diff:.1e})")

    if args.compare:
        from training import compare

        compare.run(args.output_dir, args.data_dir, rnn_dir=out_dir)
    return out_dir


def add_parser(subparsers) -> None:
    rnn = subparsers.add_parser("rnn", help="conv1d + bi-LSTM on pen-stroke sequences")
    rnn.add_argument("--data-dir", type=Path, default=Path("../shared/quickdraw"))
    rnn.add_argument("--output-dir", type=Path, default=Path("model_store"))
    rnn.add_argument("--categories", nargs="*", help="category names (default: every stroke category)")
    rnn.add_argument("--max-per-class", type=int, default=1000, help="keep at most N drawings per category")
    rnn.add_argument("--min-per-class", type=int, default=10, help="leave out categories with fewer drawings")
    rnn.add_argument("--max-len", type=int, default=MAX_LEN, help="simplify longer drawings to this many rows")
    rnn.add_argument("--augment", type=int, default=2, help="augmented copies of each training drawing")
    rnn.add_argument("--lstm-units", type=int, default=96)
    rnn.add_argument("--lstm-layers", type=int, default=2)
    rnn.add_argument("--epochs", type=int, default=20)
    rnn.add_argument("--batch-size", type=int, default=128)
    rnn.add_argument("--learning-rate", type=float, default=3e-3)
    rnn.add_argument("--class-weight-power", type=float, default=0.5, help="0 none, 1 balanced")
    rnn.add_argument("--time-budget-min", type=float, default=11.0)
    rnn.add_argument("--workers", type=int, default=2, help="processes for the stroke normalisation")
    rnn.add_argument(
        "--no-compare", dest="compare", action="store_false", help="skip the comparison with the store's CNN"
    )
    rnn.add_argument("--seed", type=int, default=SEED)
    rnn.set_defaults(func=train_rnn)
