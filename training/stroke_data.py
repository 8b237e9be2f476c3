"""Stroke drawings for the RNN: every stroke source read once, deduplicated, split by content.

Sources (``training.data.STROKE_FOLDERS``): the official simplified and raw ndjson, the Kaggle
copy, sketch-rnn ``.npz`` files and absolute-stroke ndjson. Each drawing is normalised like the
dataset (``sketch.strokes.normalize``) and keyed by its content, so copies in two sources count
once and the split (``training.data.split_of``) never depends on which source a drawing came from.

``unique_drawings`` is that reading and deduplication, done one way for both users:
``strokes_items`` streams it into TFRecord shards (``training.prepare``; training reads those), and
``load_stroke_data`` holds a small selection in memory (``training.compare`` picks its held-out
drawings with it; tests on fixtures).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sketch.drawing import Drawing
from sketch.strokes import EmptyDrawingError, normalize, parse_strokes, to_dataset_format
from training.data import SPLITS, DataError, cap_order, iter_stroke_drawings, select_categories, split_of, strokes_key
from training.records import list_sources, strokes_record


@dataclass
class StrokeExample:
    category: str
    source: str
    drawing: Drawing  # normalised, dataset 0-255 space
    key: bytes  # content of the normalised drawing: duplicates share it, the split hashes it

    @property
    def split(self) -> str:
        return split_of(self.key)


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
        for s in SPLITS:
            for e in self.examples[s]:
                per[e.category][s] += 1
        return {c: {s: per[c][s] for s in SPLITS} for c in self.classes}


Found = tuple[str, Drawing, bytes, int]  # source folder, normalised drawing, content key, cap order


def unique_drawings(files: list[str], skipped: dict[str, int]) -> Iterator[Found]:
    """Each drawing of one category's source files once, streamed, in file order.

    Duplicates (counted in ``skipped`` by reason): the same ``key_id`` (simplified and raw lines of
    one drawing), then the same normalised strokes (a drawing copied into two sources, e.g. the
    Kaggle and official files). Memory: the key_ids and one 8-byte hash per drawing kept.
    A drawing that cannot be read is a ``DataError`` naming its file (and line).
    """
    seen_ids: set[str] = set()
    seen: set[int] = set()
    for path in files:
        source = path.rsplit("/", 2)[-2]
        for where, key_id, drawing in iter_stroke_drawings(path):
            if key_id is not None:
                if key_id in seen_ids:
                    skipped["same key_id"] = skipped.get("same key_id", 0) + 1
                    continue
                seen_ids.add(key_id)
            try:
                normalized = normalize(parse_strokes(drawing))
            except EmptyDrawingError:
                skipped["no points"] = skipped.get("no points", 0) + 1
                continue
            except ValueError as exc:
                raise DataError(f"{where}: {exc}") from None
            key = strokes_key(to_dataset_format(normalized))
            order = cap_order(key)  # 8 bytes of content hash: also the duplicate check
            if order in seen:
                skipped["identical strokes"] = skipped.get("identical strokes", 0) + 1
                continue
            seen.add(order)
            yield source, normalized, key, order


def strokes_items(
    files: list[str], limit: int | None, skipped: dict[str, int], per_source: dict[str, int]
) -> Iterator[tuple[str, Callable[[], bytes]]]:
    """``(split, record maker)`` per unique drawing, for ``training.prepare``; ``per_source`` counts
    the drawings kept from each folder.

    A cap keeps the ``limit`` drawings of smallest ``cap_order`` (as ``load_stroke_data``), so a first
    pass gathers the orders and the second writes.
    """
    threshold = None
    if limit is not None:
        orders = np.fromiter((d[3] for d in unique_drawings(files, {})), dtype=np.uint64)
        if len(orders) > limit:
            threshold = int(np.partition(orders, limit - 1)[limit - 1]) if limit > 0 else -1
    for source, drawing, key, order in unique_drawings(files, skipped):
        if threshold is not None and order > threshold:
            continue
        per_source[source] = per_source.get(source, 0) + 1
        yield split_of(key), lambda drawing=drawing: strokes_record(drawing)


def _category_drawings(files: list[str]) -> tuple[list[Found], dict[str, int]]:
    skipped: dict[str, int] = {}
    return list(unique_drawings(files, skipped)), skipped


def load_stroke_data(
    data_dir: Path | str,
    categories: list[str] | None = None,
    max_per_class: int | None = 1000,
    min_per_class: int = 10,
    workers: int = 1,
) -> StrokeData:
    """Every stroke drawing of every source in memory, deduplicated, capped per class and split by content.

    Deduplicated by ``unique_drawings``, and a drawing filed under two categories is dropped from
    both (it cannot teach either). The cap keeps a class's drawings of smallest ``cap_order``, so it
    is deterministic and leaves the split proportions alone. Classes with fewer than
    ``min_per_class`` drawings are left out. Categories are read in ``workers`` processes.
    """
    wanted = select_categories(list_sources(data_dir, "strokes"), categories)
    jobs = [wanted[c] for c in wanted]
    if workers > 1 and len(jobs) > 1:
        from multiprocessing import get_context

        with get_context("fork").Pool(workers) as pool:
            results = pool.map(_category_drawings, jobs)
    else:
        results = [_category_drawings(j) for j in jobs]

    duplicates: Counter = Counter()
    per_class: dict[str, dict[bytes, tuple[StrokeExample, int]]] = {}
    for category, (drawings, skipped) in zip(wanted, results, strict=True):
        duplicates.update(skipped)
        per_class[category] = {key: (StrokeExample(category, src, st, key), order) for src, st, key, order in drawings}
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
    examples: dict[str, list[StrokeExample]] = {s: [] for s in SPLITS}
    sources: dict[str, dict[str, int]] = {}
    for c in classes:
        kept = [e for e, _ in sorted(per_class[c].values(), key=lambda item: item[1])[:max_per_class]]
        sources[c] = dict(Counter(e.source for e in kept))
        for e in kept:
            examples[e.split].append(e)
    if not classes:
        raise DataError(f"no category has {min_per_class} stroke drawings in {data_dir}")
    return StrokeData(classes, examples, sources, dict(duplicates), [Path(f) for c in classes for f in wanted[c]])
