"""Train the stroke RNN: ``python -m training.train rnn --data-dir ../shared/quickdraw``.

Reads top to bottom: data (the stroke shards of ``training.prepare``: every stroke source,
deduplicated, split by content hash; made from ``--data-dir`` first when missing or out of date)
-> model (``training.rnn``) -> train on batches streamed from the shards (``training.stroke_batches``:
augmented on the fly, grouped by length; validation, early stopping, best weights restored) ->
evaluate on the test split -> export (SavedModel + checked ONNX copy + card + report) -> compare
with the store's CNN and choose the ensemble (``training.compare``).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from models.card import DataInfo, InputSpec
from sketch.sequence import FEATURES, MAX_LEN
from training import prepare, records, shards
from training.data import SPLITS, STROKE_FOLDERS, TEST_PERCENT, VAL_PERCENT, DataError
from training.export import evaluate_and_export
from training.fitting import cosine_over_budget, time_budget, weights_for_counts
from training.stroke_batches import batches, counted
from training.tracking import Run

EVAL_BATCH = 256


def stroke_shards(args: argparse.Namespace) -> shards.ShardSet:
    """The stroke shards of this run's classes: ``--data-dir`` itself when it holds shards, else
    prepared from its official files (only what is missing or out of date is converted).

    Classes with fewer than ``--min-per-class`` training drawings (the manifest's counts) are left out.
    """
    if records.is_shard_dir(args.data_dir):
        folder = str(args.data_dir)
        cap = shards.read_manifest(folder)["max_per_class"]
        if cap != args.max_per_class:
            print(f"{folder} holds shards prepared with --max-per-class {cap}: that cap applies")
        args.max_per_class = cap  # recorded in the card as what the model saw
    else:
        folder = prepare.ensure_shards(
            args.data_dir, "strokes", args.categories, args.max_per_class, args.shards_dir, args.workers
        )
    data = shards.ShardSet(folder, "strokes", args.categories)
    train_counts = dict(zip(data.classes, data.class_counts("train"), strict=True))
    kept = [c for c, n in train_counts.items() if n >= args.min_per_class]
    if not kept:
        raise DataError(f"no category has {args.min_per_class} training stroke drawings in {folder}")
    if len(kept) < len(data.classes):
        print(f"left out, fewer than {args.min_per_class} training drawings: {len(data.classes) - len(kept)} classes")
        data = shards.ShardSet(folder, "strokes", kept)
    return data


def train_rnn(args: argparse.Namespace, run: Run) -> Path:
    t0 = time.monotonic()
    data = stroke_shards(args)
    classes = data.classes
    dropped = {}
    for c in classes:
        for reason, n in data.info["skipped"].get(c, {}).items():
            dropped[reason] = dropped.get(reason, 0) + n
    print(
        f"{len(classes)} classes; "
        + ", ".join(f"{s}: {data.size(s)}" for s in SPLITS)
        + f"; duplicates dropped: {dropped}"
    )
    model, history = fit(args, data, run)
    fields = {
        "architecture": f"conv1d x3 + {args.lstm_layers} bi-LSTM {args.lstm_units}",
        "input": InputSpec(
            name="sequence",
            shape=[None, None, FEATURES],
            description="zero-padded rows (dx, dy, end_of_stroke) from sketch.sequence: dataset-normalised "
            "strokes / 255, an all-zero row is padding",
            max_len=args.max_len,
        ),
        "data": DataInfo(
            format="strokes: " + ", ".join(STROKE_FOLDERS) + " (TFRecord shards)",
            manifest_hash=prepare.data_hash(data.info),
            split=f"content hash of the normalised strokes: {TEST_PERCENT}% test, {VAL_PERCENT}% val, rest train",
            counts=data.counts(),
            sources_per_class={c: data.info["per_source"][c] for c in classes},
            duplicates_dropped=dropped,
        ),
    }
    out_dir = evaluate_and_export(
        model,
        "rnn",
        args,
        classes,
        history,
        (time.monotonic() - t0) / 60,
        lambda: batches(data, "test", EVAL_BATCH, args.max_len),
        fields,
        run,
        test_example(data, args.max_len),
    )
    if args.compare and records.is_shard_dir(args.data_dir):
        print("comparison with the CNN skipped: it reads the official files (run python -m training.compare)")
    elif args.compare:
        from training import compare

        compare.run(args.output_dir, args.data_dir)
    return out_dir


def fit(args: argparse.Namespace, data: shards.ShardSet, run: Run):
    """The trained model (best validation weights) and its history."""
    import keras

    from training.rnn import make_rnn

    keras.utils.set_random_seed(args.seed)
    weights = weights_for_counts(data.class_counts("train"), args.class_weight_power)
    # An epoch: every training drawing and its augmented copies, once, in full batches of an endless stream.
    steps_per_epoch = max(1, int(np.ceil(data.size("train") * (1 + args.augment) / args.batch_size)))
    train_ds = batches(
        data, "train", args.batch_size, args.max_len, True, args.seed, args.augment, repeat=True, weights=weights
    )
    val_ds = counted(batches(data, "val", EVAL_BATCH, args.max_len))
    model = make_rnn(len(data.classes), lstm_units=args.lstm_units, lstm_layers=args.lstm_layers)
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
        steps_per_epoch=steps_per_epoch,
        callbacks=[
            keras.callbacks.EarlyStopping("val_accuracy", patience=3, restore_best_weights=True),
            time_budget(args.time_budget_min),
            cosine_over_budget(args.learning_rate, steps_per_epoch * args.epochs, args.time_budget_min * 60),
            run.epoch_callback(),
        ],
        verbose=2,
    )
    return model, history.history


def test_example(data: shards.ShardSet, max_len: int) -> np.ndarray:
    """One test drawing as a (1, t, 3) batch: MLflow's input example."""
    x, _ = next(iter(batches(data, "test", 1, max_len)))
    return x.numpy()


def add_parser(subparsers, common: argparse.ArgumentParser) -> None:
    rnn = subparsers.add_parser("rnn", parents=[common], help="conv1d + bi-LSTM on pen-stroke sequences")
    rnn.add_argument(
        "--max-per-class",
        type=int,
        default=1000,
        help="keep at most N drawings per category, chosen by content hash, when preparing the shards "
        "(a folder of prepared shards keeps the cap it was prepared with)",
    )
    rnn.add_argument("--min-per-class", type=int, default=10, help="leave out categories with fewer training drawings")
    rnn.add_argument("--max-len", type=int, default=MAX_LEN, help="simplify longer drawings to this many rows")
    rnn.add_argument(
        "--augment", type=int, default=2, help="augmented copies of each training drawing per epoch (new each epoch)"
    )
    rnn.add_argument("--lstm-units", type=int, default=96)
    rnn.add_argument("--lstm-layers", type=int, default=2)
    rnn.add_argument(
        "--workers", type=int, default=2, help="processes preparing the stroke shards (and reading the comparison's)"
    )
    rnn.add_argument(
        "--no-compare", dest="compare", action="store_false", help="skip the comparison with the store's CNN"
    )
    rnn.set_defaults(
        func=train_rnn, epochs=20, batch_size=128, learning_rate=3e-3, class_weight_power=0.5, time_budget_min=11.0
    )
