"""Players' drawings back into the CNN: export them, train with them, compare with the served CNN.

    python -m training.retrain --data-dir ../shared/quickdraw                 # make retrain
    python -m training.retrain --database-url postgresql://... --promote -- --epochs 8

1. ``training.export_submissions`` writes the kept submissions (labels the player chose or
   confirmed; deleted ones never) to ``--export-dir`` in the official formats.
2. ``training.train cnn --extra-data <export>`` trains a new CNN on ``--data-dir`` plus those
   drawings into ``--output-dir`` (not the served store), tracked in MLflow like any run. Options
   after ``--`` go to ``training.train cnn`` as they are.
3. The new CNN and the served one (the newest in ``--model-store``) answer the same drawings that
   neither trained on, through their ONNX copies: the test split of ``--data-dir``, and the
   players' drawings the new run held out (the test part of their content-hash split). An exact
   McNemar test on the test split says whether the top-1 difference is more than chance.

The verdict is "better" only when the new CNN's top-1 on the test split is higher and that is
significant (p < 0.05); ``--promote`` then copies it into the model store, where the API picks it up
on its next start. The figures go to ``<new version>/report/vs_served.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

from models.inputs import Inputs
from models.loading import latest_version
from models.network import Network, load_network
from training import export_submissions, prepare, shards
from training.data import DataError
from training.evaluate import mcnemar

SIGNIFICANCE = 0.05


def answers(nets: dict[str, Network], data: shards.ShardSet, split: str) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Each network's probabilities over ``data.classes`` (columns by class name) and the labels."""
    probs: dict[str, list[np.ndarray]] = {name: [] for name in nets}
    columns = {name: [net.classes.index(c) for c in data.classes] for name, net in nets.items()}
    labels = []
    for x, y in data.bitmaps(split, 1024):
        inputs = Inputs(bitmaps=x.numpy()[..., 0])
        for name, net in nets.items():
            probs[name].append(net.probabilities(inputs)[:, columns[name]])
        labels.append(y.numpy())
    if not labels:
        return {name: np.zeros((0, len(data.classes))) for name in nets}, np.zeros(0, int)
    return {name: np.concatenate(p) for name, p in probs.items()}, np.concatenate(labels)


def score(probs: dict[str, np.ndarray], labels: np.ndarray) -> dict:
    ranks = {name: np.argsort(-p, axis=1) for name, p in probs.items()}
    hit1 = {name: r[:, 0] == labels for name, r in ranks.items()}
    out = {"n": len(labels)}
    for name, r in ranks.items():
        out[name] = {
            "top1": round(float(hit1[name].mean()), 4) if len(labels) else None,
            "top5": round(float((r[:, :5] == labels[:, None]).any(axis=1).mean()), 4) if len(labels) else None,
        }
    only_new = int((hit1["new"] & ~hit1["served"]).sum())
    only_served = int((hit1["served"] & ~hit1["new"]).sum())
    out["only_new_right"], out["only_served_right"] = only_new, only_served
    out["mcnemar_p"] = round(mcnemar(only_new, only_served), 6)
    return out


def compare(new_dir: Path, served_dir: Path, data_dir: str, export_dir: Path) -> dict:
    nets = {"new": load_network(new_dir), "served": load_network(served_dir)}
    shared = [c for c in nets["new"].classes if c in nets["served"].classes]
    main_set = shards.ShardSet(prepare.ensure_shards(data_dir, "bitmap"), "bitmap", shared)
    report = {
        "new": nets["new"].version,
        "served": nets["served"].version,
        "classes_compared": len(shared),
        "test_split": score(*answers(nets, main_set, "test")),
    }
    player_shards = prepare.ensure_shards(export_dir, "bitmap")
    player_classes = [c for c in shards.read_manifest(player_shards)["kinds"]["bitmap"]["classes"] if c in shared]
    if player_classes:
        report["players_held_out"] = score(
            *answers(nets, shards.ShardSet(player_shards, "bitmap", player_classes), "test")
        )
    test = report["test_split"]
    if not test["n"]:
        raise DataError(f"{data_dir}: no test drawings of the classes both CNNs know")
    gain = test["new"]["top1"] - test["served"]["top1"]
    report["better"] = bool(gain > 0 and test["mcnemar_p"] < SIGNIFICANCE)
    report["verdict"] = (
        f"{'better' if report['better'] else 'not better'}: top-1 on the test split "
        f"{test['new']['top1']:.2%} vs {test['served']['top1']:.2%} served "
        f"({gain:+.2%}, McNemar p = {test['mcnemar_p']:.3g})"
    )
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.retrain", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL", export_submissions.DEFAULT_DATABASE_URL),
        help="the service's database (default: $DATABASE_URL, else %(default)s)",
    )
    parser.add_argument("--data-dir", default="../shared/quickdraw", help="the main training data (official files)")
    parser.add_argument("--export-dir", type=Path, default=Path("data/player_drawings"))
    parser.add_argument("--model-store", type=Path, default=Path("model_store"), help="where the served CNN is")
    parser.add_argument("--output-dir", type=Path, default=Path("runs/retrain"), help="where the new CNN goes")
    parser.add_argument("--promote", action="store_true", help="copy the new CNN into the model store when better")
    args, train_args = parser.parse_known_args(argv)
    train_args = [a for a in train_args if a != "--"]

    if export_submissions.main(["--database-url", args.database_url, "--out", str(args.export_dir)]) != 0:
        return 1
    if not json.loads((args.export_dir / "counts.json").read_text())["total"]:
        print("no kept drawings with a label the player chose or confirmed: nothing to retrain on", file=sys.stderr)
        return 1
    from training import train

    try:
        served_dir = latest_version(args.model_store / "cnn")
        # Started from the served CNN (its weights, its classes' outputs), as make train's second stage;
        # flags after these (e.g. --learning-rate) still win.
        command = ["cnn", "--data-dir", args.data_dir, "--extra-data", str(args.export_dir)]
        command += ["--init-from", str(served_dir), "--learning-rate", "1e-3"]
        new_dir = train.main([*command, "--output-dir", str(args.output_dir), *train_args])
        report = compare(Path(new_dir), served_dir, args.data_dir, args.export_dir)
    except (DataError, OSError, ValueError) as exc:
        print(f"retrain failed: {exc}", file=sys.stderr)
        return 1
    (Path(new_dir) / "report" / "vs_served.json").write_text(json.dumps(report, indent=2) + "\n")
    for name, part in (("test split", report["test_split"]), ("players' held-out", report.get("players_held_out"))):
        if part:
            print(
                f"{name:<18} n={part['n']:>6}  new top-1 {part['new']['top1']}, top-5 {part['new']['top5']}"
                f"  | served top-1 {part['served']['top1']}, top-5 {part['served']['top5']}"
            )
    print(f"new CNN {report['new']} vs served {report['served']}: {report['verdict']}")
    if args.promote and report["better"]:
        target = args.model_store / "cnn" / report["new"]
        shutil.copytree(new_dir, target)
        print(f"promoted: {target} (the API serves it from its next start)")
    elif args.promote:
        print("not promoted: the served CNN stays")
    return 0


if __name__ == "__main__":
    sys.exit(main())
