"""Train the CNN: ``python -m training.train cnn --data-dir ../shared/quickdraw``.

Reads top to bottom like a keras-io example: data (the bitmap shards of ``training.prepare``: every
category, official bitmaps where there are and rendered stroke drawings for the rest) -> model
(``training.cnn``) -> train (class-weighted, augmented; validation, early stopping, best weights
restored) -> the prior correction chosen on validation (``training.prior``) -> evaluate on the test
split, report, export (``training.export.evaluate_and_export``). With ``TF_CONFIG`` naming several
workers (``training.distributed``), each trains on its share and only the chief exports.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from models.card import DataInfo, ExtraData, InputSpec, read_card
from models.loading import latest_version
from training import distributed, prepare, prior, proto_data, shards
from training.data import SPLITS, TEST_PERCENT, VAL_PERCENT, DataError, category_files
from training.export import evaluate_and_export
from training.fitting import SEED, cosine_over_budget, time_budget, weights_for_counts
from training.tracking import Run


def shard_dir(args: argparse.Namespace) -> str:
    """The prepared bitmap shards for this run: made or brought up to date from ``--data-dir`` first."""
    return prepare.ensure_shards(args.data_dir, "bitmap", args.categories, args.max_per_class, args.shards_dir)


def extra_shard_dirs(args: argparse.Namespace) -> list[str]:
    """Shards of each ``--extra-data`` folder (every category in it; the run keeps those it has)."""
    return [prepare.ensure_shards(folder, "bitmap") for folder in args.extra_data]


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


def init_folder(path: Path) -> Path:
    """A CNN version folder, or the newest CNN of a model store."""
    path = Path(path)
    return path if (path / "card.json").is_file() else latest_version(path / "cnn")


def read_data(args: argparse.Namespace) -> shards.ShardSet:
    data = shards.ShardSet(shard_dir(args), "bitmap", args.categories, extra_shard_dirs(args))
    print(f"{len(data.classes)} classes; " + ", ".join(f"{s}: {data.size(s)}" for s in SPLITS))
    if args.extra_data:
        extra = sum(n["train"] + n["val"] for n in data.extra_counts.values())
        print(f"extra data: {extra} drawings in {len(data.extra_counts)} classes (their test split held out)")
        if data.extra_ignored:
            print(f"extra data: categories this model lacks, not used: {data.extra_ignored}")
    return data


def datasets(args: argparse.Namespace, data: shards.ShardSet, strategy, workers: int):
    """(train, val) datasets: local ones, or one share per worker under a multi-worker strategy."""
    from training.cnn import make_augmenter

    # Built outside the strategy's scope: its random state belongs to the input pipeline, not the model.
    augment = make_augmenter() if args.arch != "seed" else None
    weights = weights_for_counts(data.class_counts("train"), args.class_weight_power)

    def train_data(context=None):
        shard = (context.input_pipeline_id, context.num_input_pipelines) if context else None
        return data.bitmaps(
            "train", args.batch_size, True, args.seed, repeat=True, shard=shard, augment=augment, weights=weights
        )

    def val_data(context=None):
        shard = (context.input_pipeline_id, context.num_input_pipelines) if context else None
        return data.bitmaps("val", args.batch_size, repeat=workers > 1, shard=shard)

    if workers == 1:
        return train_data(), val_data()
    # Each worker reads its own shard files, endlessly: an epoch is the same number of steps on all.
    print("time budget: off with several workers (they must stop after the same epoch)")
    return strategy.distribute_datasets_from_function(train_data), strategy.distribute_datasets_from_function(val_data)


def compiled_model(args: argparse.Namespace, data: shards.ShardSet, steps: int, workers: int):
    import keras

    model = build(args, len(data.classes))
    if args.arch == "seed":
        lr = 1e-3
    elif workers > 1:
        lr = keras.optimizers.schedules.CosineDecay(args.learning_rate, steps)
    else:
        lr = args.learning_rate  # decayed by cosine_over_budget, down to ~0 when the budget ends
    model.compile(
        optimizer=keras.optimizers.Adam(lr),
        loss=prior.adjusted_loss(data.class_counts("train"), args.adjusted_loss)
        if args.adjusted_loss
        else "sparse_categorical_crossentropy",
        metrics=["accuracy", keras.metrics.SparseTopKCategoricalAccuracy(5, name="top5")],
    )
    return model


def build(args: argparse.Namespace, num_classes: int):
    from training.cnn import make_deepdraw, make_seed

    return make_seed(num_classes) if args.arch == "seed" else make_deepdraw(num_classes, dense=args.dense)


def weight_layers(model) -> list:
    """The layers that hold weights, nested models opened, in graph order."""
    out = []
    for layer in model.layers:
        if hasattr(layer, "layers"):
            out += weight_layers(layer)
        elif layer.weights:
            out.append(layer)
    return out


def _shapes(layer) -> list:
    return [w.shape for w in layer.get_weights()]


def warm_start(model, folder: Path, classes: list[str]) -> None:
    """Start from an earlier CNN of the same architecture (``--init-from``): every layer's weights, and
    its output rows for the classes both know; the new classes' rows keep their fresh initialisation.
    With a dense layer of another width (``--dense``) only the convolutions carry over.
    A CNN with an embedding (``training.embedding``) gives the same weights through its backbone."""
    import keras

    import training.embedding  # noqa: F401  (registers the embedding's layers for model.keras)

    old = keras.saving.load_model(folder / "model.keras")
    old_classes = read_card(folder).classes
    mine, theirs = weight_layers(model), weight_layers(old)
    head, old_head = mine.pop(), old.get_layer("probabilities")
    theirs = [layer for layer in theirs if layer.name not in ("projection", "probabilities")]
    same = [_shapes(a) == _shapes(b) for a, b in zip(mine, theirs, strict=False)]
    if len(mine) != len(theirs) or not all(same[:-1]):
        raise DataError(f"{folder}: not the same architecture as --arch {model.name}")
    resized = not same[-1]  # only the dense layer below the head differs: its width
    if resized:
        mine, theirs = mine[:-1], theirs[:-1]
    for layer, source in zip(mine, theirs, strict=True):
        layer.set_weights(source.get_weights())
    if resized:  # the head reads the new dense layer: both start afresh
        width = model.get_layer("dense").units
        print(f"started from cnn {folder.name}: its convolutions, then a fresh dense layer of {width}")
        return
    kernel, bias = head.get_weights()
    old_kernel, old_bias = old_head.get_weights()
    index = {c: i for i, c in enumerate(old_classes)}
    for j, c in enumerate(classes):
        if c in index:
            kernel[:, j], bias[j] = old_kernel[:, index[c]], old_bias[index[c]]
    head.set_weights([kernel, bias])
    print(f"started from cnn {folder.name}: {sum(c in index for c in classes)} of {len(classes)} classes known")


def callbacks(args: argparse.Namespace, steps: int, workers: int, run: Run) -> list:
    import keras

    out = [keras.callbacks.EarlyStopping("val_accuracy", patience=2, restore_best_weights=True)]
    if workers == 1:
        out.append(time_budget(args.time_budget_min))
        if args.arch != "seed":
            out.append(cosine_over_budget(args.learning_rate, steps, args.time_budget_min * 60))
    return [*out, run.epoch_callback()]


def train_cnn(args: argparse.Namespace, run: Run) -> Path | None:
    """Train, correct, evaluate and export; the exported folder (None on a worker that is not the chief)."""
    # First: with TF_CONFIG naming several workers, the collective runtime starts before any other op.
    strategy = distributed.strategy()
    workers = distributed.worker_count()

    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(args.seed)
    t0 = time.monotonic()
    data = read_data(args)
    classes = data.classes
    global_batch = args.batch_size * workers
    steps_per_epoch = int(np.ceil(data.size("train") / global_batch))
    train_ds, val_ds = datasets(args, data, strategy, workers)
    with strategy.scope():
        model = compiled_model(args, data, steps_per_epoch * args.epochs, workers)
        if args.init_from:
            warm_start(model, init_folder(args.init_from), classes)
    distributed.prepare_keras_fit(model, strategy, (tf.zeros((1, 28, 28, 1)), tf.zeros((1,), tf.int32)))
    model.summary(print_fn=lambda line, **_: print(line) if "params" in line.lower() else None)
    history = model.fit(
        train_ds,
        validation_data=val_ds,
        epochs=args.epochs,
        steps_per_epoch=steps_per_epoch,
        validation_steps=int(np.ceil(data.size("val") / global_batch)),
        callbacks=callbacks(args, steps_per_epoch * args.epochs, workers, run),
        verbose=2,
    )
    print(f"weights sha256 {distributed.weights_digest(model)} (worker {distributed.worker_index()})")
    if not distributed.is_chief():
        return None  # the chief evaluates, exports and tracks
    # A plain copy also drops a custom loss, which a saved model could not name.
    plain = workers > 1 or args.adjusted_loss
    return export(args, data, plain_copy(model, args, classes) if plain else model, history.history, t0, run)


def plain_copy(trained, args: argparse.Namespace, classes: list[str]):
    """The trained weights in a model built outside the strategy: plain variables for the export."""
    model = build(args, len(classes))
    model.set_weights(trained.get_weights())
    return model


def export(args: argparse.Namespace, data: shards.ShardSet, model, history: dict, t0: float, run: Run) -> Path:
    correction = None
    if args.prior_correction:
        val_probs, val_labels = shards.predict(model, data.bitmaps("val", 1024))
        correction = prior.choose_tau(val_probs, val_labels, data.class_counts("train"))
        prior.fold_into_bias(model, correction)
        print(f"prior correction: tau {correction.tau} (class-balanced val top-1: {correction.val_balanced_top1})")
    fields = {
        "architecture": args.arch,
        "input": InputSpec(
            name="bitmap",
            shape=[None, 28, 28, 1],
            description="28x28 bitmap, 0-255, white ink (255) on black (0), as numpy_bitmap",
        ),
        "data": DataInfo(
            format="numpy_bitmap, else strokes (simplified, simplified_kaggle) and numpy_bitmap_samples rendered "
            "by sketch, with augmented training copies (TFRecord shards)",
            manifest_hash=prepare.data_hash(data.info),
            split=f"numpy_bitmap: content hash, {TEST_PERCENT}% test, {VAL_PERCENT}% val, rest train; "
            f"rendered: hash of the bitmap, {proto_data.TEST_PERCENT}% test, {proto_data.VAL_PERCENT}% val, "
            "rest train (training.proto_data)",
            counts=data.counts(),
            source_files=source_files(data.info, data.classes),
            extra=extra_info(args, data),
        ),
    }
    return evaluate_and_export(
        model,
        "cnn",
        args,
        data.classes,
        history,
        (time.monotonic() - t0) / 60,
        lambda: data.bitmaps("test", 1024),
        fields,
        run,
        next(iter(data.bitmaps("test", 1)))[0].numpy(),
        correction,
    )


def add_parser(subparsers, common: argparse.ArgumentParser) -> None:
    cnn = subparsers.add_parser("cnn", parents=[common], help="CNN on 28x28 bitmaps of every category")
    cnn.add_argument("--max-per-class", type=int, default=None, help="read at most N drawings per category")
    cnn.add_argument(
        "--extra-data",
        action="append",
        default=[],
        metavar="DIR",
        help="more official-format files, e.g. players' drawings from training.export_submissions (repeatable)",
    )
    cnn.add_argument("--arch", choices=["deepdraw", "seed"], default="deepdraw")
    cnn.add_argument(
        "--only-bitmaps",
        action="store_true",
        help="only the categories with official bitmaps (numpy_bitmap), none rendered from strokes",
    )
    cnn.add_argument(
        "--init-from",
        type=Path,
        default=None,
        metavar="DIR",
        help="start from an earlier CNN (a version folder, or a store's newest): its weights, its classes' outputs",
    )
    cnn.add_argument(
        "--no-prior-correction",
        dest="prior_correction",
        action="store_false",
        help="keep the training prior (default: logit adjustment chosen on val, training.prior)",
    )
    cnn.add_argument(
        "--adjusted-loss",
        type=float,
        default=0.0,
        metavar="TAU",
        help="train with the logit-adjusted loss at TAU (training.prior.adjusted_loss); 0: plain cross-entropy",
    )
    cnn.add_argument(
        "--dense", type=int, default=None, help="width of the penultimate layer (deepdraw; default training.cnn.DENSE)"
    )
    cnn.set_defaults(func=train_cnn, epochs=12, learning_rate=3e-3, time_budget_min=50.0, seed=SEED)


def settle_defaults(args: argparse.Namespace) -> None:
    """The seed model is trained as it originally was: Adam, batch 32, no class weights."""
    if args.only_bitmaps and not args.categories:
        args.categories = sorted(category_files(args.data_dir, "numpy_bitmap"))
    seed = args.arch == "seed"
    if not seed and args.dense is None:
        from training.cnn import DENSE

        args.dense = DENSE
    args.batch_size = args.batch_size or (32 if seed else 256)
    if args.class_weight_power is None:
        args.class_weight_power = 0.0 if seed else 0.5
