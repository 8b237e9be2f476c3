"""Train the stroke RNN: ``python -m training.train rnn --data-dir ../shared/quickdraw``.

Reads top to bottom: data (every stroke source, deduplicated, split by content hash:
``training.stroke_data``) -> model (``training.rnn``) -> train (validation, early stopping, best
weights restored) -> evaluate on the test split -> export (SavedModel + checked ONNX copy + card +
report) -> compare with the store's CNN and choose the ensemble (``training.compare``).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from models.card import DataInfo, InputSpec
from sketch.sequence import FEATURES, MAX_LEN, pad_batch
from training import data as qd
from training import tracking
from training.evaluate import evaluate, summary, write_report
from training.export import export_model, new_version, test_metrics, training_info
from training.fitting import SEED, class_weights, cosine_over_budget, time_budget
from training.stroke_data import (
    SOURCES,
    augmented_sequences,
    length_batches,
    load_stroke_data,
    predict_sequences,
    sequences_for,
)


def train_rnn(args: argparse.Namespace) -> Path:
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

    from training.rnn import make_rnn

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
            time_budget(args.time_budget_min),
            cosine_over_budget(args.learning_rate, n_batches * args.epochs, args.time_budget_min * 60),
            tracking.current().epoch_callback(),
        ],
        verbose=2,
    )
    train_minutes = (time.monotonic() - t0) / 60

    probs = predict_sequences(lambda x: model(x, training=False).numpy(), seqs["test"])
    test_lengths = np.array([len(s) for s in seqs["test"]])
    result = evaluate(probs, y["test"], classes)
    print(summary(result, train_minutes))

    out_dir = Path(args.output_dir) / "rnn" / new_version()
    write_report(result, classes, out_dir / "report", history.history)
    card = export_model(
        model,
        out_dir,
        {
            "kind": "rnn",
            "architecture": f"conv1d x3 + {args.lstm_layers} bi-LSTM {args.lstm_units}",
            "classes": classes,
            "input": InputSpec(
                name="sequence",
                shape=[None, None, FEATURES],
                description="zero-padded rows (dx, dy, end_of_stroke) from sketch.sequence: dataset-normalised "
                "strokes / 255, an all-zero row is padding",
                max_len=args.max_len,
            ),
            "metrics": test_metrics(result),
            "training": training_info(history.history, model, args, train_minutes),
            "data": DataInfo(
                format="strokes: " + ", ".join(SOURCES),
                manifest_hash=qd.manifest_hash(data.files),
                split=f"content hash of the normalised strokes: {qd.TEST_PERCENT}% test, {qd.VAL_PERCENT}% val, "
                "rest train",
                counts=data.counts(),
                sources_per_class=data.sources,
                duplicates_dropped=data.duplicates,
            ),
            "mlflow_run": tracking.current().log_model(model, out_dir.name, pad_batch(seqs["test"][:1])),
        },
        (pad_batch([seqs["test"][i] for i in idx]) for idx in length_batches(test_lengths, 256, None)),
    )
    tracking.current().log_results(result, out_dir)
    print(f"exported {out_dir} (ONNX matches the SavedModel within {card.onnx_check.max_abs_diff:.1e})")

    if args.compare:
        from training import compare

        compare.run(args.output_dir, args.data_dir)
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
