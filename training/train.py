"""Train, evaluate and export a model into the model store: the command line.

    python -m training.train cnn --data-dir ../shared/quickdraw            # the shipped CNN
    python -m training.train cnn --arch seed --output-dir runs/seed        # the original model
    python -m training.train rnn --data-dir ../shared/quickdraw            # the stroke RNN

The flags every kind takes are declared once here; each kind adds its own (``training.train_cnn``,
``training.train_rnn``). The MLflow run is opened here, around the whole training run, and handed
to the trainer.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from training import distributed, tracking, train_cnn, train_rnn
from training.data import DataError
from training.fitting import SEED


def common_flags() -> argparse.ArgumentParser:
    """The flags of every kind (each kind sets its own defaults where they differ)."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--data-dir", default="../shared/quickdraw", help="official files, or shards (gs:// works)")
    common.add_argument("--shards-dir", default=None, help="where the prepared shards go (default: under data/shards/)")
    common.add_argument("--output-dir", type=Path, default=Path("model_store"))
    common.add_argument("--categories", nargs="*", help="category names (default: every one in the data)")
    common.add_argument("--epochs", type=int)
    common.add_argument("--batch-size", type=int, default=None, help="per worker")
    common.add_argument("--learning-rate", type=float)
    common.add_argument("--class-weight-power", type=float, default=None, help="0 none, 1 balanced")
    common.add_argument("--time-budget-min", type=float, help="stop after the epoch that passes it")
    common.add_argument("--seed", type=int, default=SEED)
    common.add_argument("--no-mlflow", dest="mlflow", action="store_false", help="do not track the run in MLflow")
    return common


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m training.train", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="kind", required=True)
    # A fresh copy for each kind: argparse shares a parent's actions, so one kind's defaults would leak.
    train_cnn.add_parser(sub, common_flags())
    train_rnn.add_parser(sub, common_flags())
    return parser


def parse(argv: list[str] | None) -> tuple[argparse.ArgumentParser, argparse.Namespace]:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.kind == "cnn":
        train_cnn.settle_defaults(args)
    return parser, args


def prepare_for(argv: list[str]) -> None:
    """Prepare the shards a training command will read (the local launcher does it once for all)."""
    _, args = parse(argv)
    if args.kind == "cnn":
        train_cnn.shard_dir(args)
        train_cnn.extra_shard_dirs(args)


def main(argv: list[str] | None = None) -> Path | None:
    """Run one training command; returns the exported version's folder (None on a non-chief worker)."""
    parser, args = parse(argv)
    params = {k: v for k, v in vars(args).items() if k not in ("func", "mlflow")}
    try:
        # One MLflow run around the whole training run (only the chief's, with several workers).
        with tracking.Run(args.kind, params, enabled=args.mlflow and distributed.is_chief()) as run:
            return args.func(args, run)
    except DataError as exc:
        parser.exit(2, f"error: {exc}\n")


if __name__ == "__main__":
    main()
