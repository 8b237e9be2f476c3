"""Build the prototype bank for every category the CNN never trained on, calibrate, measure, write it once.

``python -m training.prototypes`` (after ``training.embedding``): embeds the ``bank`` drawings of
the untrained categories (``training.proto_data``) with the served CNN, chooses the similarity
(class mean or the mean of the k nearest examples) on the ``val`` drawings, fits the temperature
and offset of the joint ranking (``models.prototypes.rank_all``) on the CNN's validation split and
the prototype ``val`` drawings, and measures once on held-out drawings: the CNN's test split for
the trained categories, the prototype ``test`` drawings (never in the bank) for the others.
Writes ``<store>/prototypes/<version>/`` = ``prototypes.npz`` + ``report/evaluation.md`` + ``card.json``.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

import sketch
from models.card import ChallengeSpec, DataInfo, Files, Metrics, ModelCard, PrototypeSpec
from models.inputs import Inputs
from models.loading import latest_version
from models.network import Network, load_network
from models.prototypes import RULE, Bank, rank_all
from training import prepare, shards, threshold
from training.calibration import MAX_TRAINED_LOSS, choose_method, evaluate, fit_calibration, report_table
from training.data import manifest_hash
from training.export import new_version
from training.proto_data import (
    PROTO_SPLITS,
    TEST_PERCENT,
    VAL_PERCENT,
    ProtoSplits,
    load_proto_splits,
    untrained_categories,
)

# Taught categories simulated for calibration and measurement: a player teaches with a few drawings.
SHOTS = 5
SIMULATED_CLASSES = 60
DEFAULT_K = 3  # the similarity when no prototype class is there to choose it on
MAX_FALSE_I_KNOW = 0.02


def embed_all(cnn: Network, x: np.ndarray, batch: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """(probabilities, embeddings) of uint8 (n, 28, 28) bitmaps, one network call per batch."""
    if not len(x):
        return np.zeros((0, len(cnn.classes)), np.float32), np.zeros((0, cnn.card.embedding.dim), np.float32)
    probs, embs = [], []
    for i in range(0, len(x), batch):
        p, e = cnn.probabilities_and_embedding(Inputs(bitmaps=x[i : i + batch].astype(np.float32)))
        probs.append(p)
        embs.append(e)
    return np.concatenate(probs), np.concatenate(embs)


@dataclass
class Simulated:
    """Categories taught from a few drawings, simulated with trained ones: ``SHOTS`` drawings of each
    become a taught class's examples, its other drawings are drawn again (module docstring)."""

    classes: np.ndarray  # trained class index of each simulated taught class
    shots: np.ndarray  # rows of the split that are examples
    queries: np.ndarray  # rows of the split drawn again
    query_labels: np.ndarray  # their simulated class (index into ``classes``)


def simulate_taught(labels: np.ndarray, n_classes: int, seed: int) -> Simulated:
    """Up to ``SIMULATED_CLASSES`` trained classes with enough drawings in this split, chosen at random."""
    rng = np.random.default_rng(seed)
    counts = np.bincount(labels, minlength=n_classes)
    eligible = np.flatnonzero(counts > SHOTS)
    if not len(eligible):
        raise SystemExit(f"no category has more than {SHOTS} drawings in this split: too few to calibrate taught ones")
    chosen = np.sort(rng.choice(eligible, min(SIMULATED_CLASSES, len(eligible)), replace=False))
    shots, queries, query_labels = [], [], []
    for i, c in enumerate(chosen):
        rows = rng.permutation(np.flatnonzero(labels == c))
        shots.append(rows[:SHOTS])
        queries.append(rows[SHOTS:])
        query_labels.append(np.full(len(rows) - SHOTS, i))
    return Simulated(chosen, np.concatenate(shots), np.concatenate(queries), np.concatenate(query_labels))


@dataclass
class Embedded:
    """Every drawing the build looks at, through the CNN once: probabilities and embeddings per split."""

    cnn: Network
    categories: list[str]  # prototype classes: categories with drawings here that the CNN did not train on
    protos: ProtoSplits
    proto_out: dict[str, tuple[np.ndarray, np.ndarray]]  # split -> (probabilities, embeddings)
    trained_out: dict[str, tuple[np.ndarray, np.ndarray]]  # val/test of the CNN's own classes
    trained_labels: dict[str, np.ndarray]
    bank: Bank


def embed_everything(store: Path, data_dir: Path) -> Embedded:
    cnn = load_network(latest_version(store / "cnn"))
    if cnn.card.embedding is None:
        raise SystemExit(f"cnn {cnn.version} exports no embedding: run python -m training.embedding first")
    categories = untrained_categories(data_dir, cnn.classes)
    protos = load_proto_splits(data_dir, categories)
    trained = shards.ShardSet(prepare.ensure_shards(data_dir, "bitmap", cnn.classes), "bitmap", cnn.classes)
    trained_out, trained_labels = {}, {}
    for split in ("val", "test"):
        x, trained_labels[split] = trained.arrays(split)
        trained_out[split] = embed_all(cnn, x)
    proto_out = {s: embed_all(cnn, protos.x[s]) for s in PROTO_SPLITS}
    bank = Bank.build(categories, proto_out["bank"][1], protos.y["bank"])
    return Embedded(cnn, categories, protos, proto_out, trained_out, trained_labels, bank)


def joint(e: Embedded, sim: Simulated, split: str, method: str, k: int | None) -> tuple:
    """What the ranking sees of one split: the trained drawings, then the drawings of similarity classes
    (prototype ones, then the simulated taught ones), each scored against the bank and the split's
    simulated taught classes. A trained drawing is not scored against a taught copy of its own class:
    a player teaches what the model lacks, so the constraint counts answers stolen from other categories."""
    t_probs, t_emb = e.trained_out[split]
    t_labels = e.trained_labels[split]
    taught_bank = Bank.build(
        [str(c) for c in sim.classes], t_emb[sim.shots], np.repeat(np.arange(len(sim.classes)), SHOTS)
    )

    def sims(emb: np.ndarray) -> np.ndarray:
        return np.concatenate([e.bank.similarity(emb, method, k), taught_bank.similarity(emb, method, k)], axis=1)

    t_sims = sims(t_emb)
    t_sims[:, len(e.categories) :][sim.classes[None, :] == t_labels[:, None]] = -np.inf
    p_probs, p_emb = e.proto_out[split]
    p_sims = np.concatenate([sims(p_emb), sims(t_emb[sim.queries])])
    p_labels = np.concatenate([e.protos.y[split], len(e.categories) + sim.query_labels])
    return t_probs, t_sims, t_labels, np.concatenate([p_probs, t_probs[sim.queries]]), p_sims, p_labels


def build(store: Path, data_dir: Path) -> ModelCard:
    e = embed_everything(store, data_dir)
    n_trained = len(e.cnn.classes)
    taught = {s: simulate_taught(e.trained_labels[s], n_trained, seed) for seed, s in enumerate(("val", "test"))}
    if e.categories:
        method, k, method_scores = choose_method(e.bank, e.proto_out["val"][1], e.protos.y["val"])
    else:
        method, k, method_scores = "knn", DEFAULT_K, {}
    val = joint(e, taught["val"], "val", method, k)
    temp, offset, fit = fit_calibration(*val)
    result = evaluate(*joint(e, taught["test"], "test", method, k), temp, offset)
    fit["val_trained_top1"] = evaluate(*val, temp, offset)["trained_top1"]
    val_probs, val_emb = e.trained_out["val"]
    challenge = challenge_spec(
        rank_all(val_probs, e.bank.similarity(val_emb, method, k), temp, offset), e.trained_labels["val"], e.cnn.classes
    )
    out_dir = store / "prototypes" / new_version()
    (out_dir / "report").mkdir(parents=True)
    bank_emb, bank_labels = e.proto_out["bank"][1].astype(np.float16), e.protos.y["bank"].astype(np.int16)
    np.savez_compressed(out_dir / "prototypes.npz", embeddings=bank_emb, labels=bank_labels)
    chosen = f"{method}{'' if k is None else f' (k={k})'}"
    table = report_table(result, n_trained, len(e.categories), len(taught["test"].classes))
    write_evaluation(out_dir, e, chosen, method_scores, temp, offset, fit, result, table, len(taught["test"].classes))
    spec = PrototypeSpec(
        members={"cnn": e.cnn.version},
        trained_classes=n_trained,
        method=method,
        knn_k=k,
        temperature=temp,
        offset=offset,
        rule=RULE,
        chosen_on=f"validation: the CNN's val split ({len(val[2])}), {len(e.protos.y['val'])} prototype val "
        f"drawings and {len(taught['val'].queries)} drawings of {len(taught['val'].classes)} categories taught "
        f"from {SHOTS} val drawings each; trained top-1 may drop at most {MAX_TRAINED_LOSS:.1%}",
    )
    card = prototype_card(out_dir, e, data_dir, chosen, spec, challenge, result)
    card.check_compatible()
    card.write(out_dir)
    print(table)
    return card


def write_evaluation(out_dir, e: Embedded, chosen, method_scores, temp, offset, fit, result, table, n_taught) -> None:
    similarity = (
        f"Similarity on the {len(e.protos.y['val'])} prototype validation drawings (top-1 among "
        f"{len(e.categories)} prototype classes): " + ", ".join(f"{m} {v:.1%}" for m, v in method_scores.items())
        if e.categories
        else "Every category is one of the CNN's: no prototype classes"
    )
    (out_dir / "report" / "evaluation.md").write_text(
        f"# Prototype and taught classes with cnn {e.cnn.version}\n\n{similarity}; similarity: {chosen}.\n\n"
        f"Temperature {temp}, offset {offset} (validation: class-balanced top-1 + top-5 {fit['val_score']:.3f}; "
        f"trained top-1 alone {fit['val_trained_top1_alone']:.1%}, ranked among all {fit['val_trained_top1']:.1%}).\n\n"
        f"Held out (test), with {n_taught} categories taught from {SHOTS} test drawings each (their other test "
        f"drawings drawn again; a copy of a trained category, its own output still there):\n\n{table}\n\n"
        f"A trained-category drawing answered by a similarity class: {result['trained_answered_by_prototype']:.1%}; "
        f"a similarity-class drawing answered by a trained class: {result['prototype_answered_by_trained']:.1%}.\n"
    )


def prototype_card(out_dir, e: Embedded, data_dir: Path, chosen, spec, challenge, result) -> ModelCard:
    files = [data_dir / "numpy_bitmap_samples", data_dir / "simplified", data_dir / "simplified_kaggle"]
    return ModelCard(
        kind="prototypes",
        version=out_dir.name,
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        architecture=f"cnn {e.cnn.version} softmax + {chosen} cosine similarity to {len(e.categories)} prototype "
        "classes and the taught ones",
        classes=[*e.cnn.classes, *e.categories],
        preprocessing_version=sketch.PREPROCESSING_VERSION,
        metrics=Metrics(
            split="test",
            n=result["n_trained"] + result["n_prototype"],
            top1=round(result["all_top1"], 4),
            top5=round(result["all_top5"], 4),
        ),
        data=DataInfo(
            format="numpy_bitmap_samples + simplified + simplified_kaggle, rendered by sketch",
            manifest_hash=manifest_hash([p for f in files if f.is_dir() for p in f.iterdir()]),
            split=f"hash of the bitmap: {TEST_PERCENT}% test, {VAL_PERCENT}% val, rest bank",
            counts=e.protos.counts(),
        ),
        files=Files(saved_model=None, onnx=None, keras=None, report="report"),
        prototypes=spec,
        challenge=challenge,
        notes=[
            "held-out figures (test): "
            + ", ".join(f"{key} {v:.4f}" for key, v in result.items() if isinstance(v, float))
            + "; see report/evaluation.md"
        ],
    )


def challenge_spec(probs: np.ndarray, labels: np.ndarray, classes: list[str]) -> ChallengeSpec:
    """The Challenge's threshold (``training.threshold``) and prompts, most recognisable first, on validation."""
    table = threshold.rates(probs, labels)
    i, within = threshold.choose(table, MAX_FALSE_I_KNOW)
    rate = "false 'I know' rate (hardest wrong prompt)"
    if within:
        why = f"the lowest threshold whose {rate} is at most {MAX_FALSE_I_KNOW}"
    else:
        why = f"no threshold keeps the {rate} at most {MAX_FALSE_I_KNOW}: the one with the lowest rate"
        print(f"challenge: {why} ({table['false_hardest'][i]:.4f} at {table['threshold'][i]})")
    hits = probs.argmax(axis=1) == labels
    recall = np.array([hits[labels == c].mean() if (labels == c).any() else 0.0 for c in range(len(classes))])
    order = sorted(range(len(classes)), key=lambda c: (-recall[c], classes[c]))
    return ChallengeSpec(
        threshold=float(table["threshold"][i]),
        false_i_know_rate=round(float(table["false_hardest"][i]), 4),
        false_i_know_rate_random_prompt=round(float(table["false_random"][i]), 6),
        recognised_rate=round(float(table["recognised"][i]), 4),
        prompts=[classes[c] for c in order],
        recall=[round(float(recall[c]), 4) for c in order],
        chosen_on=f"val split, {len(labels)} drawings: {why}",
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-store", type=Path, default=Path("model_store"))
    parser.add_argument("--data-dir", type=Path, default=Path("../shared/quickdraw"))
    args = parser.parse_args(argv)
    build(args.model_store, args.data_dir)


if __name__ == "__main__":
    main()
