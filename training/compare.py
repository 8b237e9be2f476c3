"""CNN-through-the-rasteriser vs stroke RNN vs their ensemble, on the same held-out stroke drawings.

    python -m training.compare --model-store model_store --data-dir ../shared/quickdraw

The drawings: the RNN's test split (content hash, never trained on by the RNN) restricted to the
classes both models know, minus any drawing whose rendering matches a bitmap the CNN may have
trained on (Pearson r > 0.9 with a ``numpy_bitmap`` row of its category outside the CNN's test
split; e.g. a few sketch-rnn alarm clocks are also bitmap rows). Every model is called through the
API's own code (``api.inference.prepare`` + ``PROBABILITIES``), so this measures what is served:
the strokes are rasterised exactly like the dataset for the CNN and turned into (dx, dy, end)
sequences for the RNN. Top-1/top-5 count over the shared classes only (each model's probabilities
restricted to them), so the three answer the same question.

The ensemble's RNN weight is chosen first on the validation split of the same classes (lowest
log-loss) and written into the RNN's ``metadata.json`` (``ensemble``), which the API reads.
Writes ``<store>/rnn/<version>/report/comparison.md`` and prints it.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

from sketch.raster import render_simplified
from training import data as qd

WEIGHT_GRID = np.round(np.arange(0.0, 1.0001, 0.05), 2)
DUPLICATE_R = 0.9


def _load(store: Path, rnn_dir: Path | None):
    from api.registry import latest_version, load_model

    cnn = load_model(latest_version(store / "cnn"), "onnx")
    rnn = load_model(rnn_dir or latest_version(store / "rnn"), "onnx")
    return cnn, rnn


def cnn_seen_duplicates(data_dir: Path, examples: list, cnn_classes: list[str]) -> np.ndarray:
    """True for each stroke example whose 28x28 rendering matches a bitmap the CNN could have trained on."""
    files = qd.category_files(data_dir, "numpy_bitmap")
    dup = np.zeros(len(examples), dtype=bool)
    by_class: dict[str, list[int]] = {}
    for i, e in enumerate(examples):
        by_class.setdefault(e.category, []).append(i)
    for category, idx in by_class.items():
        if category not in cnn_classes or category not in files:
            continue
        rows = qd.read_bitmaps(files[category])
        seen = rows[np.array([qd.split_of(r.tobytes()) != "test" for r in rows], dtype=bool)].astype(np.float32)
        renders = np.stack([render_simplified(examples[i].strokes).ravel() for i in idx]).astype(np.float32)

        def standardise(a):
            a = a - a.mean(axis=1, keepdims=True)
            return a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-6)

        best = (standardise(renders) @ standardise(seen).T).max(axis=1)
        dup[idx] = best > DUPLICATE_R
    return dup


def _probabilities(examples: list, cnn, rnn, batch: int = 128) -> tuple[np.ndarray, np.ndarray]:
    """CNN and RNN probabilities for stroke examples, through the API's preprocessing and model calls."""
    from api.inference import PROBABILITIES, prepare
    from api.registry import Registry
    from api.schemas import PredictRequest
    from api.settings import Settings
    from sketch.strokes import to_dataset_format

    registry = Registry(models={"cnn": cnn, "rnn": rnn})
    settings = Settings()
    cnn_out, rnn_out = [], []
    for start in range(0, len(examples), batch):
        items = [
            prepare(PredictRequest(strokes=to_dataset_format(e.strokes), model="ensemble"), settings, registry)
            for e in examples[start : start + batch]
        ]
        cnn_out.append(PROBABILITIES["cnn"](items, registry)[0])
        rnn_out.append(PROBABILITIES["rnn"](items, registry)[0])
    return np.concatenate(cnn_out), np.concatenate(rnn_out)


def _restrict(probs: np.ndarray, classes: list[str], shared: list[str]) -> np.ndarray:
    index = {c: i for i, c in enumerate(classes)}
    p = probs[:, [index[c] for c in shared]]
    return p / np.maximum(p.sum(axis=1, keepdims=True), 1e-12)


def _topk(probs: np.ndarray, labels: np.ndarray, k: int) -> float:
    return float((np.argsort(-probs, axis=1)[:, :k] == labels[:, None]).any(axis=1).mean())


def _nll(probs: np.ndarray, labels: np.ndarray) -> float:
    return float(-np.log(np.maximum(probs[np.arange(len(labels)), labels], 1e-7)).mean())


def _mcnemar(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value for b and c discordant pairs."""
    from math import comb

    n = b + c
    if n == 0:
        return 1.0
    tail = sum(comb(n, i) for i in range(min(b, c) + 1)) / 2**n
    return min(1.0, 2 * tail)


def run(store: Path, data_dir: Path, rnn_dir: Path | None = None) -> str:
    from api.inference import combine_probabilities
    from training.rnn import load_stroke_data

    store, data_dir = Path(store), Path(data_dir)
    cnn, rnn = _load(store, rnn_dir)
    rnn_dir = rnn_dir or store / "rnn" / rnn.version
    params = rnn.metadata.get("training", {}).get("params", {})
    shared = [c for c in cnn.classes if c in set(rnn.classes)]
    # The RNN's own data selection, restricted to the shared classes: same split, same caps.
    data = load_stroke_data(
        data_dir,
        shared,
        params.get("max_per_class", 1000),
        1,
        int(params.get("workers", 1)),
    )
    label_of = {c: i for i, c in enumerate(shared)}

    splits = {}
    for split in ("val", "test"):
        examples = data.examples[split]
        dup = cnn_seen_duplicates(data_dir, examples, cnn.classes)
        examples = [e for e, d in zip(examples, dup, strict=True) if not d]
        labels = np.array([label_of[e.category] for e in examples], dtype=np.int64)
        cnn_p, rnn_p = _probabilities(examples, cnn, rnn)
        splits[split] = {"examples": examples, "labels": labels, "cnn": cnn_p, "rnn": rnn_p, "dropped": int(dup.sum())}

    def ensemble(s, w):
        return combine_probabilities(s["cnn"], cnn.classes, s["rnn"], rnn.classes, w)[0]

    val = splits["val"]
    losses = {float(w): _nll(_restrict(ensemble(val, w), shared, shared), val["labels"]) for w in WEIGHT_GRID}
    weight = min(losses, key=lambda w: (round(losses[w], 6), abs(w - 0.5)))

    test = splits["test"]
    y = test["labels"]
    rows = {
        "CNN (strokes rasterised like the dataset)": _restrict(test["cnn"], cnn.classes, shared),
        "RNN (stroke sequences)": _restrict(test["rnn"], rnn.classes, shared),
        f"Ensemble (geometric mean, RNN weight {weight:.2f})": ensemble(test, weight),
    }
    full = {
        "CNN": _topk(test["cnn"], np.array([cnn.classes.index(shared[i]) for i in y]), 1),
        "RNN": _topk(test["rnn"], np.array([rnn.classes.index(shared[i]) for i in y]), 1),
    }
    n = len(y)
    lines = [
        f"Held-out stroke drawings: {n} (RNN test split, {len(shared)} classes both models know; "
        f"{test['dropped']} dropped as copies of CNN training bitmaps). CNN {cnn.version}, RNN {rnn.version}.",
        "",
        "| model | top-1 | top-5 | mean per-class top-1 | log-loss |",
        "|---|---|---|---|---|",
    ]
    scores = {}
    names = list(rows)
    for name, p in rows.items():
        t1, t5 = _topk(p, y, 1), _topk(p, y, 5)
        scores[name] = {"top1": round(t1, 4), "top5": round(t5, 4)}
        se = np.sqrt(t1 * (1 - t1) / max(n, 1))
        per_class = np.mean([(p[y == i].argmax(axis=1) == i).mean() for i in np.unique(y)])
        lines.append(f"| {name} | {t1:.1%} ± {se:.1%} | {t5:.1%} | {per_class:.1%} | {_nll(p, y):.3f} |")
    cnn_right, ens_right = (p.argmax(axis=1) == y for p in (rows[names[0]], rows[names[2]]))
    lines += [
        "",
        f"Paired, ensemble vs CNN: the ensemble alone is right on {int((ens_right & ~cnn_right).sum())} "
        f"drawings, the CNN alone on {int((cnn_right & ~ens_right).sum())} (McNemar exact p = "
        f"{_mcnemar(int((ens_right & ~cnn_right).sum()), int((cnn_right & ~ens_right).sum())):.2f}).",
    ]
    lines += [
        "",
        f"Top-1 over each model's own full class list (what `cnn`/`rnn` answer alone): CNN {full['CNN']:.1%} "
        f"of {len(cnn.classes)} classes, RNN {full['RNN']:.1%} of {len(rnn.classes)} classes. ± is one standard "
        f"error. Ensemble weight chosen on {len(val['labels'])} validation drawings "
        f"(log-loss {losses[weight]:.3f}; CNN alone {losses[0.0]:.3f}, RNN alone {losses[1.0]:.3f}).",
        "",
        "Per class (top-1, test drawings):",
        "",
        "| class | n | CNN | RNN | ensemble |",
        "|---|---|---|---|---|",
    ]
    preds = {name: p.argmax(axis=1) for name, p in rows.items()}
    for i, c in enumerate(shared):
        sel = y == i
        if not sel.any():
            continue
        accs = [f"{(preds[m][sel] == i).mean():.0%}" for m in names]
        lines.append(f"| {c} | {int(sel.sum())} | " + " | ".join(accs) + " |")
    table = "\n".join(lines) + "\n"

    report = rnn_dir / "report"
    report.mkdir(parents=True, exist_ok=True)
    (report / "comparison.md").write_text("# CNN vs RNN vs ensemble on held-out strokes\n\n" + table)
    meta_path = rnn_dir / "metadata.json"
    meta = json.loads(meta_path.read_text())
    meta["ensemble"] = {
        "rnn_weight": weight,
        "combination": "weighted geometric mean over the shared classes, renormalised",
        "chosen_on": f"val split, {len(val['labels'])} stroke drawings, lowest log-loss on a 0.05 grid",
        "cnn_version": cnn.version,
        "classes": shared,
        # The ensemble's own held-out figures first (what GET /models shows), then all three models'.
        "metrics": {"split": "held-out strokes, shared classes", "n": n, **scores[names[2]]},
        "test": scores | {"n": n},
    }
    meta_path.write_text(json.dumps(meta, indent=2) + "\n")
    print(table)
    return table


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m training.compare", description=__doc__.split("\n")[0])
    parser.add_argument("--model-store", type=Path, default=Path("model_store"))
    parser.add_argument("--data-dir", type=Path, default=Path("../shared/quickdraw"))
    parser.add_argument("--rnn-version", help="default: the newest RNN in the store")
    args = parser.parse_args(argv)
    rnn_dir = args.model_store / "rnn" / args.rnn_version if args.rnn_version else None
    try:
        run(args.model_store, args.data_dir, rnn_dir)
    except qd.DataError as exc:
        parser.exit(2, f"error: {exc}\n")


if __name__ == "__main__":
    main()
