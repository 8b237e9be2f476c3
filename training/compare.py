"""CNN vs stroke RNN vs their ensemble on the same held-out stroke drawings; writes the ensemble.

    python -m training.compare --model-store model_store --data-dir ../shared/quickdraw

The drawings: the stroke test split (content hash, never trained on by the RNN) of every CNN class
that has stroke drawings, minus any drawing whose rendering matches a bitmap the CNN may have
trained on (Pearson r > 0.9 with a ``numpy_bitmap`` row of its category outside the CNN's test
split). Every answer ranks **all** the CNN's classes, as served: the CNN on the dataset-exact
rasterisation of the strokes, the RNN on its sequence (restricted to the CNN's classes it knows),
the ensemble by ``models.ensemble.combine``.

Classes the RNN never learned have no stroke drawings here, yet most of the CNN's classes are such
classes, so the ensemble is tuned and checked in a simulation of that: half of the shared classes
are hidden from the RNN (their columns dropped, the rest renormalised, as if it had never learned
them), each half in turn. The RNN weight and the scale of its "something else" opinion for classes
it does not know (``models.ensemble``) are chosen together on the validation split: among the
pairs that do no harm to the hidden classes (their drawings' top-1 at least the CNN's alone), the
lowest mean log-loss over the two simulations. The ensemble and the CNN are then compared on the
test drawings of the hidden halves, and over all the real test drawings.

Writes a new ensemble version, ``<store>/ensemble/<version>/`` (its card names the exact CNN and
RNN versions, the weight and the held-out figures; ``report/comparison.md``), and prints the table.
"""

from __future__ import annotations

import argparse
import os
from datetime import UTC, datetime
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

import sketch
from models.card import EnsembleSpec, Metrics, ModelCard
from models.ensemble import RULE, combine
from models.inputs import inputs_of
from models.kinds import BITMAP, SEQUENCE
from models.loading import latest_version
from models.network import Network, load_network
from sketch.raster import render_simplified
from training.data import DataError, category_files, read_bitmaps, split_of
from training.evaluate import mcnemar
from training.export import new_version
from training.proto_data import proto_split
from training.stroke_data import StrokeExample, load_stroke_data

WEIGHT_GRID = np.round(np.arange(0.0, 1.0001, 0.05), 2)
SCALE_GRID = tuple(2.0**k for k in range(-6, 5))  # 1/64 .. 16
DUPLICATE_R = 0.9


def cnn_seen_duplicates(data_dir: Path, examples: list[StrokeExample], cnn_classes: list[str]) -> np.ndarray:
    """True for each stroke example the CNN could have trained on: its 28x28 rendering matches a
    ``numpy_bitmap`` row outside the CNN's test split, or, for a category the CNN knows from rendered
    strokes (``training.records.rendered_items``), the rendering is in that category's training split."""
    files = category_files(data_dir, "numpy_bitmap") if (Path(data_dir) / "numpy_bitmap").is_dir() else {}
    dup = np.zeros(len(examples), dtype=bool)
    by_class: dict[str, list[int]] = {}
    for i, e in enumerate(examples):
        by_class.setdefault(e.category, []).append(i)
    for category, idx in by_class.items():
        if category not in cnn_classes:
            continue
        if category not in files:
            dup[idx] = [proto_split(render_simplified(examples[i].drawing)) == "bank" for i in idx]
            continue
        rows = read_bitmaps(files[category])
        seen = rows[np.array([split_of(r.tobytes()) != "test" for r in rows], dtype=bool)].astype(np.float32)
        renders = np.stack([render_simplified(examples[i].drawing).ravel() for i in idx]).astype(np.float32)
        best = (_standardise(renders) @ _standardise(seen).T).max(axis=1)
        dup[idx] = best > DUPLICATE_R
    return dup


def _standardise(a: np.ndarray) -> np.ndarray:
    a = a - a.mean(axis=1, keepdims=True)
    return a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-6)


def _probabilities(examples: list[StrokeExample], cnn: Network, rnn: Network, batch: int = 256):
    """CNN and RNN probabilities for stroke examples, through the same preprocessing as the API."""
    cnn_out, rnn_out = [], []
    for start in range(0, len(examples), batch):
        part = examples[start : start + batch]
        inputs = inputs_of([e.drawing for e in part], frozenset({BITMAP, SEQUENCE}), rnn.max_len)
        cnn_out.append(cnn.probabilities(inputs))
        rnn_out.append(rnn.probabilities(inputs))
    return np.concatenate(cnn_out), np.concatenate(rnn_out)


def _rnn_over(probs: np.ndarray, rnn_classes: list[str], classes: list[str]) -> np.ndarray:
    """The RNN alone answering over ``classes``: its probabilities there (0 for classes it does not know)."""
    index = {c: i for i, c in enumerate(rnn_classes)}
    out = np.zeros((len(probs), len(classes)), dtype=np.float32)
    for j, c in enumerate(classes):
        if c in index:
            out[:, j] = probs[:, index[c]]
    return out / np.maximum(out.sum(axis=1, keepdims=True), 1e-12)


def _topk(probs: np.ndarray, labels: np.ndarray, k: int) -> float:
    return float((np.argsort(-probs, axis=1)[:, :k] == labels[:, None]).any(axis=1).mean())


def _nll(probs: np.ndarray, labels: np.ndarray) -> float:
    return float(-np.log(np.maximum(probs[np.arange(len(labels)), labels], 1e-7)).mean())


def _hide(split: dict, rnn: Network, hidden: set[str]) -> tuple[np.ndarray, list[str]]:
    """The RNN's probabilities as if it had never learned ``hidden`` (columns dropped, renormalised)."""
    keep = [i for i, c in enumerate(rnn.classes) if c not in hidden]
    probs = split["rnn"][:, keep]
    return probs / probs.sum(axis=1, keepdims=True), [rnn.classes[i] for i in keep]


def _halves(cnn: Network, rnn: Network) -> list[set[str]]:
    shared = sorted(set(cnn.classes) & set(rnn.classes))
    return [set(shared[0::2]), set(shared[1::2])]


def _choose(val: dict, cnn: Network, rnn: Network) -> tuple[float, float, dict]:
    """(weight, scale): the lowest simulated validation log-loss that leaves hidden classes no worse off."""
    halves = _halves(cnn, rnn)
    hidden = [_hide(val, rnn, h) for h in halves]
    on_hidden = [np.array([cnn.classes[y] in h for y in val["labels"]]) for h in halves]
    cnn_hits = sum(int((val["cnn"][sel].argmax(1) == val["labels"][sel]).sum()) for sel in on_hidden)
    losses, harmless = {}, set()
    for w in WEIGHT_GRID:
        for scale in SCALE_GRID:
            ens = [combine(val["cnn"], cnn.classes, p, c, float(w), scale) for p, c in hidden]
            losses[float(w), scale] = float(np.mean([_nll(e, val["labels"]) for e in ens]))
            hits = sum(
                int((e[sel].argmax(1) == val["labels"][sel]).sum()) for e, sel in zip(ens, on_hidden, strict=True)
            )
            if hits >= cnn_hits:
                harmless.add((float(w), scale))
    weight, scale = min(harmless, key=lambda k: (round(losses[k], 6), abs(k[0] - 0.5), abs(np.log(k[1]))))
    return weight, scale, losses


def _hidden_class_simulation(split: dict, cnn: Network, rnn: Network, weight: float, scale: float) -> list[str]:
    """Ensemble vs CNN on drawings of classes hidden from the RNN (see the module docstring)."""
    lines = []
    for half, hidden in enumerate(_halves(cnn, rnn)):
        probs, classes = _hide(split, rnn, hidden)
        ens = combine(split["cnn"], cnn.classes, probs, classes, weight, scale)
        sel = np.array([cnn.classes[y] in hidden for y in split["labels"]])
        y = split["labels"][sel]
        lines.append(
            f"| hidden half {half + 1} ({len(hidden)} classes, {int(sel.sum())} drawings) | "
            f"{_topk(split['cnn'][sel], y, 1):.1%} | {_topk(ens[sel], y, 1):.1%} | "
            f"{_topk(split['cnn'][sel], y, 5):.1%} | {_topk(ens[sel], y, 5):.1%} |"
        )
    return lines


def held_out_splits(cnn: Network, rnn: Network, data_dir: Path) -> dict[str, dict]:
    """Per split (val, test): the stroke drawings neither model trained on, their labels among the CNN's
    classes, and both models' probabilities."""
    params = rnn.card.training.params if rnn.card.training else {}
    # The CNN's classes that have stroke drawings, with the RNN's own data selection: same split, same caps.
    stroke_classes = [c for c in cnn.classes if c in set(rnn.classes)]
    data = load_stroke_data(
        data_dir, stroke_classes, params.get("max_per_class", 1000), 1, int(params.get("workers", 1))
    )
    label_of = {c: i for i, c in enumerate(cnn.classes)}

    splits = {}
    for split in ("val", "test"):
        examples = data.examples[split]
        dup = cnn_seen_duplicates(data_dir, examples, cnn.classes)
        examples = [e for e, d in zip(examples, dup, strict=True) if not d]
        labels = np.array([label_of[e.category] for e in examples], dtype=np.int64)
        cnn_p, rnn_p = _probabilities(examples, cnn, rnn)
        splits[split] = {"labels": labels, "cnn": cnn_p, "rnn": rnn_p, "dropped": int(dup.sum())}
    return splits


def run(store: Path, data_dir: Path) -> ModelCard:
    store, data_dir = Path(store), Path(data_dir)
    cnn = load_network(latest_version(store / "cnn"), "onnx")
    rnn = load_network(latest_version(store / "rnn"), "onnx")
    splits = held_out_splits(cnn, rnn, data_dir)

    def ensemble(s: dict, w: float, scale: float = 1.0) -> np.ndarray:
        return combine(s["cnn"], cnn.classes, s["rnn"], rnn.classes, w, scale)

    val = splits["val"]
    weight, scale, losses = _choose(val, cnn, rnn)

    test = splits["test"]
    y = test["labels"]
    n = len(y)
    rows = {
        "CNN (strokes rasterised like the dataset)": test["cnn"],
        "RNN (stroke sequences; its classes among the CNN's)": _rnn_over(test["rnn"], rnn.classes, cnn.classes),
        f"Ensemble (RNN weight {weight:.2f}, unknown-class scale {scale:g})": ensemble(test, weight, scale),
    }
    names = list(rows)
    lines = [
        f"Held-out stroke drawings: {n} (stroke test split of the {len(set(y.tolist()))} CNN classes that have "
        f"stroke drawings; {test['dropped']} dropped as drawings the CNN may have trained on). Every answer ranks all "
        f"{len(cnn.classes)} CNN classes. CNN {cnn.version}, RNN {rnn.version}.",
        "",
        "| model | top-1 | top-5 | mean per-class top-1 | log-loss |",
        "|---|---|---|---|---|",
    ]
    for name, p in rows.items():
        t1, t5 = _topk(p, y, 1), _topk(p, y, 5)
        se = np.sqrt(t1 * (1 - t1) / max(n, 1))
        per_class = np.mean([(p[y == i].argmax(axis=1) == i).mean() for i in np.unique(y)])
        lines.append(f"| {name} | {t1:.1%} ± {se:.1%} | {t5:.1%} | {per_class:.1%} | {_nll(p, y):.3f} |")
    cnn_right, ens_right = (rows[m].argmax(axis=1) == y for m in (names[0], names[2]))
    only_ens, only_cnn = int((ens_right & ~cnn_right).sum()), int((cnn_right & ~ens_right).sum())
    lines += [
        "",
        f"Paired, ensemble vs CNN: the ensemble alone is right on {only_ens} drawings, the CNN alone on {only_cnn} "
        f"(McNemar exact p = {mcnemar(only_ens, only_cnn):.3f}). ± is one standard error. Weight and scale "
        f"chosen on {len(val['labels'])} validation drawings with half of the shared classes hidden from the RNN "
        f"in turn: the lowest mean log-loss ({losses[weight, scale]:.3f}; CNN alone {losses[0.0, 1.0]:.3f}) among the "
        "choices whose top-1 on the hidden classes' drawings is at least the CNN's.",
        "",
        "Classes the RNN does not know (simulated on the test drawings: half of the shared classes hidden from it):",
        "",
        "| drawings of hidden classes | CNN top-1 | ensemble top-1 | CNN top-5 | ensemble top-5 |",
        "|---|---|---|---|---|",
        *_hidden_class_simulation(test, cnn, rnn, weight, scale),
    ]
    table = "\n".join(lines) + "\n"

    out_dir = store / "ensemble" / new_version()
    (out_dir / "report").mkdir(parents=True)
    (out_dir / "report" / "comparison.md").write_text("# CNN vs RNN vs ensemble on held-out strokes\n\n" + table)
    card = ensemble_card(out_dir, cnn, rnn, weight, scale, rows[names[2]], test["cnn"], y, len(val["labels"]))
    card.check_compatible()
    card.write(out_dir)
    print(table)
    print(f"wrote {out_dir}")
    return card


def ensemble_card(out_dir, cnn, rnn, weight, scale, ensemble_p, cnn_p, y, n_val: int) -> ModelCard:
    ens_top1, ens_top5 = _topk(ensemble_p, y, 1), _topk(ensemble_p, y, 5)
    return ModelCard(
        kind="ensemble",
        version=out_dir.name,
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        architecture=f"cnn {cnn.version} x rnn {rnn.version}",
        classes=cnn.classes,
        preprocessing_version=sketch.PREPROCESSING_VERSION,
        metrics=Metrics(split="held-out strokes", n=len(y), top1=round(ens_top1, 4), top5=round(ens_top5, 4)),
        files={"saved_model": None, "onnx": None, "keras": None, "report": "report"},
        ensemble=EnsembleSpec(
            members={"cnn": cnn.version, "rnn": rnn.version},
            rnn_weight=weight,
            unknown_scale=scale,
            rule=RULE,
            chosen_on=f"val split, {n_val} stroke drawings, half of the shared classes hidden from the "
            "RNN in turn: lowest mean log-loss among the choices that keep the hidden classes' top-1 at least the "
            "CNN's (weight on a 0.05 grid, scale on powers of 2)",
        ),
        notes=[
            f"held-out strokes, all {len(cnn.classes)} CNN classes ranked: CNN top-1 {_topk(cnn_p, y, 1):.4f}, "
            f"ensemble {ens_top1:.4f}; see report/comparison.md"
        ],
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m training.compare", description=__doc__.split("\n")[0])
    parser.add_argument("--model-store", type=Path, default=Path("model_store"))
    parser.add_argument("--data-dir", type=Path, default=Path("../shared/quickdraw"))
    args = parser.parse_args(argv)
    try:
        run(args.model_store, args.data_dir)
    except DataError as exc:
        parser.exit(2, f"error: {exc}\n")


if __name__ == "__main__":
    main()
