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

from models.card import DataInfo, ExtraData, InputSpec
from training import data as qd
from training import distributed, prepare, prior, proto_data, shards, tracking, train_rnn
from training.evaluate import evaluate, summary, write_report
from training.export import export_model, new_version, test_metrics, training_info
from training.fitting import SEED, cosine_over_budget, time_budget, weights_for_counts


def shard_dir(args: argparse.Namespace, kind: str) -> str:
    """The prepared shards for this run: made or brought up to date from ``--data-dir`` first."""
    return prepare.ensure_shards(args.data_dir, kind, args.categories, args.max_per_class, args.shards_dir)


def extra_shard_dirs(args: argparse.Namespace, kind: str) -> list[str]:
    """Shards of each ``--extra-data`` folder (every category in it; the run keeps those it has)."""
    return [prepare.ensure_shards(folder, kind) for folder in args.extra_data]


def extra_info(args: argparse.Namespace, data: shards.ShardSet) -> ExtraData | None:
    if not args.extra_data:
        return None
    merged = {"sources": {f: s for m in data.extra_infos for f, s in m["sources"].items()}}
    return ExtraData(
        sources=[str(f) for f in args.extra_data],
        manifest_hash=prepare.data_hash(merged),
        counts=data.extra_counts,
        ignored=data.extra_ignored,
    )


def source_files(info: dict, classes: list[str]) -> dict[str, list[str]]:
    """Per class, the official files (folder/file) the prepared shards were made from."""
    out: dict[str, list[str]] = {c: [] for c in classes}
    for path in sorted(info["sources"]):
        folder, name = path.rsplit("/", 2)[-2:]
        category = name.split(".")[0]
        if category in out:
            out[category].append(f"{folder}/{name}")
    return out


def train_cnn(args: argparse.Namespace) -> Path | None:
    # First: with TF_CONFIG naming several workers, the collective runtime starts before any other op.
    strategy = distributed.strategy()
    workers, chief = distributed.worker_count(), distributed.is_chief()

    import keras
    import tensorflow as tf

    from training.cnn import ARCHITECTURES, make_augmenter

    keras.utils.set_random_seed(args.seed)
    t0 = time.monotonic()
    data = shards.ShardSet(shard_dir(args, "bitmap"), "bitmap", args.categories, extra_shard_dirs(args, "bitmap"))
    classes = data.classes
    print(f"{len(classes)} classes; " + ", ".join(f"{s}: {data.size(s)}" for s in qd.SPLITS))
    if args.extra_data:
        extra = sum(n["train"] + n["val"] for n in data.extra_counts.values())
        print(f"extra data: {extra} drawings in {len(data.extra_counts)} classes (their test split held out)")
        if data.extra_ignored:
            print(f"extra data: categories this model lacks, not used: {data.extra_ignored}")

    # Built outside the strategy's scope: its random state belongs to the input pipeline, not the model.
    augment = make_augmenter() if args.arch != "seed" else None
    weights = weights_for_counts(data.class_counts("train"), args.class_weight_power)
    global_batch = args.batch_size * workers
    steps_per_epoch = int(np.ceil(data.size("train") / global_batch))

    def train_data(context=None):
        shard = (context.input_pipeline_id, context.num_input_pipelines) if context else None
        return data.bitmaps(
            "train", args.batch_size, True, args.seed, repeat=True, shard=shard, augment=augment, weights=weights
        )

    def val_data(context=None):
        shard = (context.input_pipeline_id, context.num_input_pipelines) if context else None
        return data.bitmaps("val", args.batch_size, repeat=workers > 1, shard=shard)

    if workers > 1:
        # Each worker reads its own shard files, endlessly: an epoch is the same number of steps on all.
        train_ds = strategy.distribute_datasets_from_function(train_data)
        val_ds = strategy.distribute_datasets_from_function(val_data)
        print("time budget: off with several workers (they must stop after the same epoch)")
    else:
        train_ds, val_ds = train_data(), val_data()

    with strategy.scope():
        model = ARCHITECTURES[args.arch](len(classes))
        steps = steps_per_epoch * args.epochs
        if args.arch == "seed":
            lr = 1e-3
        elif workers > 1:
            lr = keras.optimizers.schedules.CosineDecay(args.learning_rate, steps)
        else:
            lr = args.learning_rate  # decayed by cosine_over_budget below, down to ~0 when the budget ends
        model.compile(
            optimizer=keras.optimizers.Adam(lr),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy", keras.metrics.SparseTopKCategoricalAccuracy(5, name="top5")],
        )
    distributed.prepare_keras_fit(model, strategy, (tf.zeros((1, 28, 28, 1)), tf.zeros((1,), tf.int32)))
    model.summary(print_fn=lambda line, **_: print(line) if "params" in line.lower() else None)
    run = tracking.current()
    callbacks = [keras.callbacks.EarlyStopping("val_accuracy", patience=2, restore_best_weights=True)]
    if workers == 1:
        callbacks.append(time_budget(args.time_budget_min))
        if args.arch != "seed":
            callbacks.append(cosine_over_budget(args.learning_rate, steps, args.time_budget_min * 60))
    history = model.fit(
        train_ds,
        validation_data=val_ds,
        epochs=args.epochs,
        steps_per_epoch=steps_per_epoch,
        validation_steps=int(np.ceil(data.size("val") / global_batch)),
        callbacks=[*callbacks, run.epoch_callback()],
        verbose=2,
    )
    print(f"weights sha256 {distributed.weights_digest(model)} (worker {distributed.worker_index()})")
    if not chief:
        return None  # the chief evaluates, exports and tracks
    if workers > 1:
        trained, model = model, ARCHITECTURES[args.arch](len(classes))  # plain variables for the export
        model.set_weights(trained.get_weights())
    correction = None
    if args.prior_correction:
        val_probs, val_labels = shards.predict(model, data.bitmaps("val", 1024))
        correction = prior.choose_tau(val_probs, val_labels, data.class_counts("train"))
        prior.fold_into_bias(model, correction)
        print(f"prior correction: tau {correction.tau} (class-balanced val top-1: {correction.val_balanced_top1})")
    train_minutes = (time.monotonic() - t0) / 60

    probs, labels = shards.predict(model, data.bitmaps("test", 1024))
    result = evaluate(probs, labels, classes)
    print(summary(result, train_minutes))

    out_dir = Path(args.output_dir) / "cnn" / new_version()
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
            "training": training_info(history.history, model, args, train_minutes, correction),
            "data": DataInfo(
                format="numpy_bitmap, else strokes (simplified, simplified_kaggle) and numpy_bitmap_samples rendered "
                "by sketch, with augmented training copies (TFRecord shards)",
                manifest_hash=prepare.data_hash(data.info),
                split=f"numpy_bitmap: content hash, {qd.TEST_PERCENT}% test, {qd.VAL_PERCENT}% val, rest train; "
                f"rendered: hash of the bitmap, {proto_data.TEST_PERCENT}% test, {proto_data.VAL_PERCENT}% val, "
                "rest train (training.proto_data)",
                counts=data.counts(),
                source_files=source_files(data.info, classes),
                extra=extra_info(args, data),
            ),
            "mlflow_run": run.log_model(model, out_dir.name, next(iter(data.bitmaps("test", 1)))[0].numpy()),
        },
        (x.numpy() for x, _ in data.bitmaps("test", 1024)),
    )
    run.log_results(result, out_dir)
    print(f"exported {out_dir} (ONNX matches the SavedModel within {card.onnx_check.max_abs_diff:.1e})")
    return out_dir


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m training.train", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="kind", required=True)

    cnn = sub.add_parser("cnn", help="CNN on 28x28 numpy_bitmap drawings")
    cnn.add_argument("--data-dir", default="../shared/quickdraw", help="official files, or shards (gs:// works)")
    cnn.add_argument("--shards-dir", default=None, help="where the prepared shards go (default: under data/shards/)")
    cnn.add_argument("--output-dir", type=Path, default=Path("model_store"))
    cnn.add_argument("--categories", nargs="*", help="category names (default: every bitmap category)")
    cnn.add_argument("--max-per-class", type=int, default=None, help="read at most N drawings per category")
    cnn.add_argument(
        "--extra-data",
        action="append",
        default=[],
        metavar="DIR",
        help="more official-format files, e.g. players' drawings from training.export_submissions (repeatable)",
    )
    cnn.add_argument("--arch", choices=["deepdraw", "seed"], default="deepdraw")
    cnn.add_argument("--epochs", type=int, default=12)
    cnn.add_argument("--batch-size", type=int, default=None, help="per worker; default 256 (seed: 32)")
    cnn.add_argument("--learning-rate", type=float, default=3e-3)
    cnn.add_argument("--class-weight-power", type=float, default=None, help="0 none, 1 balanced; default 0.5 (seed: 0)")
    cnn.add_argument("--time-budget-min", type=float, default=50.0)
    cnn.add_argument(
        "--no-prior-correction",
        dest="prior_correction",
        action="store_false",
        help="keep the training prior (default: logit adjustment chosen on val, training.prior)",
    )
    cnn.add_argument("--seed", type=int, default=SEED)
    cnn.set_defaults(func=train_cnn)

    train_rnn.add_parser(sub)
    for kind_parser in sub.choices.values():
        kind_parser.add_argument(
            "--no-mlflow", dest="mlflow", action="store_false", help="do not track the run in MLflow"
        )
    return parser


def prepare_for(argv: list[str]) -> None:
    """Prepare the shards a training command will read (the distributed launcher does it once for all)."""
    args = build_parser().parse_args(argv)
    if args.kind == "cnn":
        shard_dir(args, "bitmap")
        extra_shard_dirs(args, "bitmap")


def main(argv: list[str] | None = None) -> Path | None:
    """Run one training command; returns the exported version's folder (None on a non-chief worker)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.kind == "cnn":
        # The seed model is trained as it originally was: Adam, batch 32, no class weights.
        seed = args.arch == "seed"
        args.batch_size = args.batch_size or (32 if seed else 256)
        if args.class_weight_power is None:
            args.class_weight_power = 0.0 if seed else 0.5
    params = {k: v for k, v in vars(args).items() if k not in ("func", "mlflow")}
    try:
        # One MLflow run around the whole training run (only the chief's, with several workers).
        with tracking.Run(args.kind, params, enabled=args.mlflow and distributed.is_chief()):
            return args.func(args)
    except qd.DataError as exc:
        parser.exit(2, f"error: {exc}\n")


if __name__ == "__main__":
    main()
