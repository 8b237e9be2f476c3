"""How the served default model does on every category: held-out drawings only, plain and class-balanced.

Rows: the 78 categories with ``numpy_bitmap`` data (their content-hash test split), the 267 known
here by a few stroke drawings (their ``training.proto_data`` test split, rendered exactly as the
API renders a player's strokes), all 345 together, and taught categories: for each of up to
``--taught`` thin categories, ``--shots`` of its held-out drawings are taught as a new category
(the way ``POST /categories`` does: rendered, embedded, added to the model) and its other held-out
drawings are drawn again; a hit is the taught category in the top k (one category taught at a time,
the built-in one of the same name still there).

Every answer ranks every class the model has, as served (``api.settings.DEFAULT_MODELS``: the first
model of the list that the store holds, or ``--model``).

    .venv/bin/python bench/every_category.py [--model-store model_store] [--data-dir ../shared/quickdraw]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from api.settings import DEFAULT_MODELS
from models.inputs import Inputs
from models.loading import load_store
from training.data import category_files, read_bitmaps, split_of
from training.proto_data import load_proto_splits


def probabilities(model, x: np.ndarray) -> tuple[np.ndarray, list[str]]:
    answers = [model.predict(Inputs(bitmaps=x[i : i + 512].astype(np.float32))) for i in range(0, len(x), 512)]
    return np.concatenate([a.probabilities for a in answers]), answers[0].classes


def hits(probs: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    k = min(k, probs.shape[1])
    return (np.argpartition(-probs, k - 1, axis=1)[:, :k] == labels[:, None]).any(axis=1)


def row(name: str, probs: np.ndarray, labels: np.ndarray) -> tuple:
    out = [name, len(labels), len(np.unique(labels))]
    for k in (1, 5):
        h = hits(probs, labels, k)
        out += [float(h.mean()), float(np.mean([h[labels == c].mean() for c in np.unique(labels)]))]
    return tuple(out)


def held_out(data_dir: Path, classes: list[str]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{"bitmap": (x, labels), "thin": (x, labels)}``: test-split drawings, labels in ``classes``."""
    index = {c: i for i, c in enumerate(classes)}
    files = category_files(data_dir, "numpy_bitmap")
    xs, ys = [], []
    for name, path in sorted(files.items()):
        rows = read_bitmaps(path)
        test = rows[np.array([split_of(r.tobytes()) == "test" for r in rows], dtype=bool)]
        xs.append(test.reshape(-1, 28, 28))
        ys.append(np.full(len(test), index[name]))
    thin = sorted(c for c in classes if c not in files)
    protos = load_proto_splits(data_dir, thin)
    thin_labels = np.array([index[thin[i]] for i in protos.y["test"]], dtype=int)
    return {"bitmap": (np.concatenate(xs), np.concatenate(ys)), "thin": (protos.x["test"], thin_labels)}


def taught_rows(model, data: tuple[np.ndarray, np.ndarray], shots: int, categories: int, seed: int) -> list:
    """Top-1/top-5 of categories taught from ``shots`` held-out drawings, one at a time."""
    x, labels = data
    rng = np.random.default_rng(seed)
    eligible = [c for c in np.unique(labels) if (labels == c).sum() >= shots + 3]
    chosen = rng.choice(eligible, min(categories, len(eligible)), replace=False)
    probs, query_labels = [], []
    dim = model.cnn.card.embedding.dim
    try:
        for j, c in enumerate(chosen):
            rows = rng.permutation(np.flatnonzero(labels == c))
            teach, again = x[rows[:shots]].astype(np.float32), x[rows[shots:]].astype(np.float32)
            model.set_taught(["taught"], model.embed(Inputs(bitmaps=teach)), np.zeros(shots, int))
            p, classes = probabilities(model, again)
            probs.append(p)
            query_labels.append(np.full(len(again), j))
    finally:
        model.set_taught([], np.zeros((0, dim), np.float32), np.zeros(0, int))
    taught_column = len(classes) - 1
    flat = np.concatenate(probs)
    labels = np.concatenate(query_labels)
    out = [f"taught ({shots} drawings each, one at a time)", len(labels), len(chosen)]
    for k in (1, 5):
        h = hits(flat, np.full(len(flat), taught_column), k)
        out += [float(h.mean()), float(np.mean([h[labels == j].mean() for j in range(len(chosen))]))]
    return [tuple(out)]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-store", type=Path, default=Path("model_store"))
    parser.add_argument("--data-dir", type=Path, default=Path("../shared/quickdraw"))
    parser.add_argument("--model", help="a model name; default: the API's default for bitmaps")
    parser.add_argument("--shots", type=int, default=5)
    parser.add_argument("--taught", type=int, default=100, help="thin categories taught, one at a time")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    loaded = load_store(args.model_store)
    name = args.model or next(n for n in DEFAULT_MODELS["bitmap"] if n in loaded.by_name)
    model = loaded.by_name[name]
    data = held_out(args.data_dir, model.classes)
    rows = []
    parts = {}
    for part, title in (("bitmap", "with numpy_bitmap data"), ("thin", "known by a few stroke drawings")):
        x, labels = data[part]
        parts[part] = probabilities(model, x)[0], labels
        rows.append(row(f"{len(np.unique(labels))} categories {title}", *parts[part]))
    rows.append(row("all", np.concatenate([parts[p][0] for p in parts]), np.concatenate([parts[p][1] for p in parts])))
    if loaded.teachable is model:
        rows += taught_rows(model, data["thin"], args.shots, args.taught, args.seed)
    print(f"{name} {model.version} ({len(model.classes)} classes), held-out drawings:\n")
    print("| held-out drawings | n | categories | top-1 | top-1, class-balanced | top-5 | top-5, class-balanced |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for title, n, c, t1, b1, t5, b5 in rows:
        print(f"| {title} | {n} | {c} | {t1:.1%} | {b1:.1%} | {t5:.1%} | {b5:.1%} |")


if __name__ == "__main__":
    main()
