"""Stroke drawings for the RNN: every stroke source read, deduplicated, split by content, batched.

Sources (``SOURCES``): the official simplified and raw ndjson, the Kaggle copy, sketch-rnn
``.npz`` files and absolute-stroke ndjson. Each drawing is normalised like the dataset
(``sketch.strokes.normalize``) and keyed by its content, so copies in two sources count once and
the split (``training.data.split_of``) never depends on which source a drawing came from.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sketch.sequence import MAX_LEN, normalized_to_sequence, pad_batch, stroke3_to_strokes
from sketch.strokes import SIMPLIFIED_SIDE, normalize, parse_strokes, to_dataset_format
from training import data as qd

# Stroke folders of ../shared/quickdraw, in the order their drawings are taken (the first copy of
# a drawing wins): official lines with key_ids first, then the copies without.
SOURCES = ("simplified", "raw", "simplified_kaggle", "sketchrnn", "strokes_extra")


# --------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------


@dataclass
class StrokeExample:
    category: str
    source: str
    strokes: list[np.ndarray]  # normalised, dataset 0-255 space
    key: bytes  # content of the normalised drawing: duplicates share it, the split hashes it

    @property
    def split(self) -> str:
        return qd.split_of(self.key)


@dataclass
class StrokeData:
    classes: list[str]
    examples: dict[str, list[StrokeExample]]  # per split
    sources: dict[str, dict[str, int]] = field(default_factory=dict)  # per class: drawings per source
    duplicates: dict[str, int] = field(default_factory=dict)  # dropped, by reason
    files: list[Path] = field(default_factory=list)

    def labels(self, split: str) -> np.ndarray:
        index = {c: i for i, c in enumerate(self.classes)}
        return np.array([index[e.category] for e in self.examples[split]], dtype=np.int32)

    def counts(self) -> dict[str, dict[str, int]]:
        per: dict[str, Counter] = {c: Counter() for c in self.classes}
        for s in qd.SPLITS:
            for e in self.examples[s]:
                per[e.category][s] += 1
        return {c: {s: per[c][s] for s in qd.SPLITS} for c in self.classes}


def _read_source(data_dir: Path, source: str, category: str, path: Path) -> Iterator[tuple[str | None, list]]:
    """``(key_id or None, strokes)`` for each drawing of one source file; strokes as ``parse_strokes`` wants."""
    if source == "sketchrnn":
        try:
            with np.load(path, allow_pickle=True, encoding="latin1") as npz:
                items = [np.asarray(a) for split in ("train", "valid", "test") for a in npz[split]]
        except (OSError, ValueError, KeyError) as exc:
            raise qd.DataError(f"{path}: not a sketch-rnn .npz with train/valid/test ({exc})") from None
        for item in items:
            yield None, [s.T.tolist() for s in stroke3_to_strokes(item)]
        return
    for item in qd.iter_ndjson(path):
        fmt = item.get("format")
        if fmt not in (None, "sketchrnn-stroke3-abs"):
            raise qd.DataError(f"{path}: unknown stroke format {fmt!r}")
        key_id = item.get("key_id")
        yield (str(key_id) if key_id is not None else None), item["drawing"]


def _category_files(data_dir: Path) -> dict[str, dict[str, Path]]:
    """``{source: {category: file}}`` for the stroke folders that exist (sketchrnn files are .npz)."""
    found: dict[str, dict[str, Path]] = {}
    for source in SOURCES:
        folder = Path(data_dir) / source
        if not folder.is_dir():
            continue
        if source == "sketchrnn":
            found[source] = {p.name.removesuffix(".npz"): p for p in sorted(folder.glob("*.npz"))}
        else:
            found[source] = qd.category_files(data_dir, source)
    if not found:
        raise qd.DataError(f"no stroke folder ({', '.join(SOURCES)}) in {data_dir}")
    return found


def load_stroke_data(
    data_dir: Path,
    categories: list[str] | None = None,
    max_per_class: int = 1000,
    min_per_class: int = 10,
    workers: int = 1,
) -> StrokeData:
    """Every stroke drawing of every source, deduplicated, capped per class and split by content.

    Duplicates: the same ``key_id`` (simplified and raw lines of one drawing), then the same
    normalised strokes (a drawing copied into two sources, e.g. the Kaggle and official files).
    The cap keeps a class's drawings with the smallest content hashes, so it is deterministic and
    leaves the split proportions alone. Classes with fewer than ``min_per_class`` drawings are left out.
    """
    by_source = _category_files(data_dir)
    available = sorted({c for files in by_source.values() for c in files})
    wanted = qd.select_categories({c: Path() for c in available}, categories)
    duplicates: Counter = Counter()
    raw_items: dict[str, list[tuple[str, list]]] = defaultdict(list)
    files: list[Path] = []
    for category in wanted:
        seen_ids: set[str] = set()
        seen_raw: set[bytes] = set()
        for source, cat_files in by_source.items():
            if category not in cat_files:
                continue
            files.append(cat_files[category])
            for key_id, drawing in _read_source(data_dir, source, category, cat_files[category]):
                if key_id is not None:
                    if key_id in seen_ids:
                        duplicates["same key_id"] += 1
                        continue
                    seen_ids.add(key_id)
                raw_key = qd.strokes_key(drawing)
                if raw_key in seen_raw:
                    duplicates["identical strokes"] += 1
                    continue
                seen_raw.add(raw_key)
                raw_items[category].append((source, drawing))

    jobs = [(c, s, d) for c, items in raw_items.items() for s, d in items]
    if workers > 1:
        from multiprocessing import get_context

        with get_context("fork").Pool(workers) as pool:
            prepared = pool.map(_prepare_one, jobs, chunksize=64)
    else:
        prepared = [_prepare_one(j) for j in jobs]

    per_class: dict[str, dict[bytes, StrokeExample]] = defaultdict(dict)
    for (category, source, _), result in zip(jobs, prepared, strict=True):
        if result is None:
            duplicates["unusable (no points)"] += 1
            continue
        strokes, key = result
        if key in per_class[category]:
            duplicates["same normalised strokes"] += 1
            continue
        per_class[category][key] = StrokeExample(category, source, strokes, key)
    # A drawing filed under two categories cannot teach either: drop every copy.
    owners: dict[bytes, set[str]] = defaultdict(set)
    for category, items in per_class.items():
        for key in items:
            owners[key].add(category)
    for key, cats in owners.items():
        if len(cats) > 1:
            for c in cats:
                del per_class[c][key]
                duplicates["same drawing in two categories"] += 1

    classes = sorted(c for c, items in per_class.items() if len(items) >= min_per_class)
    examples: dict[str, list[StrokeExample]] = {s: [] for s in qd.SPLITS}
    sources: dict[str, dict[str, int]] = {}
    for c in classes:
        kept = [per_class[c][k] for k in sorted(per_class[c], key=_hash_order)[:max_per_class]]
        sources[c] = dict(Counter(e.source for e in kept))
        for e in kept:
            examples[e.split].append(e)
    if not classes:
        raise qd.DataError(f"no category has {min_per_class} stroke drawings in {data_dir}")
    return StrokeData(classes, examples, sources, dict(duplicates), files)


def _hash_order(key: bytes) -> bytes:
    import hashlib

    return hashlib.blake2b(key, digest_size=8, person=b"cap").digest()


def _prepare_one(job: tuple[str, str, list]) -> tuple[list[np.ndarray], bytes] | None:
    """One drawing -> normalised strokes and its content key (None when it has no point)."""
    _, _, drawing = job
    try:
        strokes = normalize(parse_strokes(drawing))
    except ValueError:
        return None
    return strokes, qd.strokes_key(to_dataset_format(strokes))


def augment(strokes: list[np.ndarray], rng: np.random.Generator) -> list[np.ndarray]:
    """A plausible other hand: random stretch, shear and small turn, then the usual normalisation.

    No mirroring: the order and direction of the strokes is what this model reads, and people
    draw with a handedness.
    """
    angle = rng.uniform(-0.2, 0.2)
    c, s = np.cos(angle), np.sin(angle)
    stretch = np.diag(rng.uniform(0.75, 1.25, size=2))
    shear = np.array([[1.0, rng.uniform(-0.2, 0.2)], [rng.uniform(-0.2, 0.2), 1.0]])
    matrix = np.array([[c, -s], [s, c]]) @ shear @ stretch
    moved = [(st - SIMPLIFIED_SIDE / 2) @ matrix.T for st in strokes]
    return normalize(moved)


def _augmented_sequence(job: tuple[list[np.ndarray], int, int]) -> np.ndarray:
    strokes, seed, max_len = job
    return normalized_to_sequence(augment(strokes, np.random.default_rng(seed)), max_len)


def augmented_sequences(
    examples: list[StrokeExample], copies: int, seed: int, max_len: int = MAX_LEN, workers: int = 1
) -> list[np.ndarray]:
    """``copies`` augmented sequences of every example (copy by copy), reproducible from ``seed``."""
    jobs = [
        (e.strokes, seed * 1_000_003 + c * len(examples) + i, max_len)
        for c in range(copies)
        for i, e in enumerate(examples)
    ]
    if workers > 1 and jobs:
        from multiprocessing import get_context

        with get_context("fork").Pool(workers) as pool:
            return pool.map(_augmented_sequence, jobs, chunksize=256)
    return [_augmented_sequence(j) for j in jobs]


def sequences_for(examples: list[StrokeExample], max_len: int = MAX_LEN) -> list[np.ndarray]:
    return [normalized_to_sequence(e.strokes, max_len) for e in examples]


def length_batches(lengths: np.ndarray, batch_size: int, rng: np.random.Generator | None) -> list[np.ndarray]:
    """Indices in batches of similar length (little padding); shuffled when ``rng`` is given."""
    order = rng.permutation(len(lengths)) if rng is not None else np.arange(len(lengths))
    # Sort within windows of 20 batches: similar lengths together, still a different mix every epoch.
    window = batch_size * 20
    batches = []
    for start in range(0, len(order), window):
        chunk = order[start : start + window]
        chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
        batches += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
    if rng is not None:
        rng.shuffle(batches)
    return batches


def predict_sequences(run, sequences: list[np.ndarray], batch_size: int = 256) -> np.ndarray:
    """Probabilities for every sequence, through ``run(padded_batch) -> probs`` (Keras, SavedModel or ONNX)."""
    lengths = np.array([len(s) for s in sequences])
    out: np.ndarray | None = None
    for idx in length_batches(lengths, batch_size, None):
        probs = np.asarray(run(pad_batch([sequences[i] for i in idx])))
        if out is None:
            out = np.zeros((len(sequences), probs.shape[1]), dtype=np.float32)
        out[idx] = probs
    return out if out is not None else np.zeros((0, 0), dtype=np.float32)
