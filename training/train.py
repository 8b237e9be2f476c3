"""Train, evaluate and export a model into the model store.

    python -m training.train cnn --data-dir ../shared/quickdraw            # the shipped default
    python -m training.train cnn --arch seed --output-dir runs/seed        # the original model
    python -m training.train rnn --data-dir ../shared/quickdraw            # the stroke RNN

Reads top to bottom like a keras-io example: settings -> data -> model -> train (validation,
early stopping, best weights restored) -> evaluate on the held-out test split -> export.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

from models.card import DataInfo, InputSpec
from training import data as qd
from training import train_rnn
from training.evaluate import evaluate, summary, write_report
from training.export import export_model, new_version, test_metrics, training_info
from training.fitting import SEED, class_weights, time_budget


def train_cnn(args: argparse.Namespace) -> Path:
    import keras
    import tensorflow as tf

    from training.cnn import ARCHITECTURES, make_augmenter

    keras.utils.set_random_seed(args.seed)
    t0 = time.monotonic()
    splits = qd.load_bitmap_splits(args.data_dir, args.categories, args.max_per_class)
    classes = splits.classes
    print(f"{len(classes)} classes; " + ", ".join(f"{s}: {len(splits.y[s])}" for s in qd.SPLITS))

    augment = make_augmenter() if args.arch != "seed" else None

    def dataset(split: str, train: bool) -> tf.data.Dataset:
        ds = tf.data.Dataset.from_tensor_slices((splits.x[split][..., None], splits.y[split]))
        if train:
            ds = ds.shuffle(len(splits.y[split]), seed=args.seed, reshuffle_each_iteration=True)
        ds = ds.batch(args.batch_size).map(lambda x, y: (tf.cast(x, tf.float32), y))
        if train and augment is not None:
            ds = ds.map(lambda x, y: (augment(x, training=True), y), num_parallel_calls=tf.data.AUTOTUNE)
        return ds.prefetch(2)

    model = ARCHITECTURES[args.arch](len(classes))
    steps = int(np.ceil(len(splits.y["train"]) / args.batch_size)) * args.epochs
    lr = keras.optimizers.schedules.CosineDecay(args.learning_rate, steps) if args.arch != "seed" else 1e-3
    model.compile(
        optimizer=keras.optimizers.Adam(lr),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy", keras.metrics.SparseTopKCategoricalAccuracy(5, name="top5")],
    )
    model.summary(print_fn=lambda line, **_: print(line) if "params" in line.lower() else None)
    history = model.fit(
        dataset("train", True),
        validation_data=dataset("val", False),
        epochs=args.epochs,
        class_weight=class_weights(splits.y["train"], len(classes), args.class_weight_power),
        callbacks=[
            keras.callbacks.EarlyStopping("val_accuracy", patience=2, restore_best_weights=True),
            time_budget(args.time_budget_min),
        ],
        verbose=2,
    )
    train_minutes = (time.monotonic() - t0) / 60

    probs = model.predict(dataset("test", False), verbose=0)
    result = evaluate(probs, splits.y["test"], classes)
    print(summary(result, train_minutes))

    out_dir = Path(args.output_dir) / "cnn" / new_version()
    files = qd.select_categories(qd.category_files(args.data_dir, "numpy_bitmap"), args.categories)
    write_report(result, classes, out_dir / "report", history.history)
    card = export_model(
        model,
        out_dir,
        {
            "kind": "cnn",
            "architecture": args.arch,
            "classes": classes,
            "input": InputSpec(
                name="bitmap",
                shape=[None, 28, 28, 1],
                description="28x28 bitmap, 0-255, white ink (255) on black (0), as numpy_bitmap",
            ),
            "metrics": test_metrics(result),
            "training": training_info(history.history, model, args, train_minutes),
            "data": DataInfo(
                format="numpy_bitmap",
                manifest_hash=qd.manifest_hash(list(files.values())),
                split=f"content hash: {qd.TEST_PERCENT}% test, {qd.VAL_PERCENT}% val, rest train",
                counts=splits.counts(),
            ),
        },
        (splits.x["test"][i : i + 1024, ..., None].astype(np.float32) for i in range(0, len(splits.y["test"]), 1024)),
    )
    print(f"exported {out_dir} (ONNX matches the SavedModel within {card.onnx_check.max_abs_diff:.1e})")
    return out_dir


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m training.train", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="kind", required=True)

    cnn = sub.add_parser("cnn", help="CNN on 28x28 numpy_bitmap drawings")
    cnn.add_argument("--data-dir", type=Path, default=Path("../shared/quickdraw"))
    cnn.add_argument("--output-dir", type=Path, default=Path("model_store"))
    cnn.add_argument("--categories", nargs="*", help="category names (default: every bitmap category)")
    cnn.add_argument("--max-per-class", type=int, default=None, help="read at most N drawings per category")
    cnn.add_argument("--arch", choices=["deepdraw", "seed"], default="deepdraw")
    cnn.add_argument("--epochs", type=int, default=5)
    cnn.add_argument("--batch-size", type=int, default=None, help="default 128 (seed: 32)")
    cnn.add_argument("--learning-rate", type=float, default=2e-3)
    cnn.add_argument("--class-weight-power", type=float, default=None, help="0 none, 1 balanced; default 0.5 (seed: 0)")
    cnn.add_argument("--time-budget-min", type=float, default=19.0)
    cnn.add_argument("--seed", type=int, default=SEED)
    cnn.set_defaults(func=train_cnn)

    train_rnn.add_parser(sub)

    args = parser.parse_args(argv)
    if args.kind == "cnn":
        # The seed model is trained as it originally was: Adam, batch 32, no class weights.
        seed = args.arch == "seed"
        args.batch_size = args.batch_size or (32 if seed else 128)
        if args.class_weight_power is None:
            args.class_weight_power = 0.0 if seed else 0.5
    try:
        args.func(args)
    except qd.DataError as exc:
        parser.exit(2, f"error: {exc}\n")


if __name__ == "__main__":
    main()
