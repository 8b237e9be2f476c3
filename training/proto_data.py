"""Drawings of the categories the CNN never trained on, as dataset-exact 28x28 bitmaps, split once.

For each category without ``numpy_bitmap`` training data: its ``numpy_bitmap_samples`` rows, its
``simplified`` stroke drawings and its ``simplified_kaggle`` ones, rendered by ``sketch`` exactly
as the API renders a player's strokes. ``raw/`` is left out: line i there is the same drawing as
line i of ``simplified/``, so it would put one drawing on both sides of the split. A stroke drawing
whose rendering matches one of the category's sample bitmaps (same drawing, two formats) is dropped.

Every drawing lands in ``bank`` (prototype examples), ``val`` (calibration) or ``test`` (the
held-out figures; never a prototype) by a hash of its bitmap: deterministic, whatever the caps.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sketch.drawing import Drawing
from sketch.raster import render_simplified
from sketch.strokes import EmptyDrawingError, normalize, parse_strokes
from training.data import category_files, iter_ndjson, read_bitmaps

PROTO_SPLITS = ("bank", "val", "test")
TEST_PERCENT = 25
VAL_PERCENT = 15
# simplified_kaggle holds up to 6,000 drawings of a few categories: cap them so no class dominates.
MAX_STROKE_DRAWINGS = 300
# Pearson r above which a rendered stroke drawing is the same drawing as a sample bitmap.
SAME_DRAWING_R = 0.97
# Stroke folders rendered for a category without numpy_bitmap data, in reading order.
RENDERED_STROKE_FOLDERS = ("simplified", "simplified_kaggle")


def proto_split(bitmap: np.ndarray) -> str:
    bucket = int.from_bytes(hashlib.blake2b(bitmap.tobytes(), digest_size=4, person=b"proto").digest(), "little")
    bucket %= 100
    if bucket < TEST_PERCENT:
        return "test"
    if bucket < TEST_PERCENT + VAL_PERCENT:
        return "val"
    return "bank"


def _same_as_any(img: np.ndarray, refs: np.ndarray) -> bool:
    if not len(refs):
        return False
    a = img.reshape(-1).astype(np.float64)
    b = refs.reshape(len(refs), -1).astype(np.float64)
    a = (a - a.mean()) / (a.std() + 1e-9)
    b = (b - b.mean(axis=1, keepdims=True)) / (b.std(axis=1, keepdims=True) + 1e-9)
    return bool((b @ a / a.size).max() > SAME_DRAWING_R)


def rendered_drawings(
    sample_file: str | Path | None, stroke_files: list[str | Path], cap: int = MAX_STROKE_DRAWINGS
) -> Iterator[tuple[np.ndarray, Drawing | None]]:
    """``(bitmap, normalised drawing or None)`` per drawing, no repeats: the sample bitmaps (no
    strokes), then each stroke file's drawings (at most ``cap`` each) rendered as the API renders."""
    bitmaps = read_bitmaps(Path(sample_file)).reshape(-1, 28, 28) if sample_file else np.zeros((0, 28, 28), np.uint8)
    seen: set[bytes] = {b.tobytes() for b in bitmaps}
    for b in bitmaps:
        yield b, None
    for path in stroke_files:
        for item in iter_ndjson(path, cap):
            try:
                drawing = normalize(parse_strokes(item["drawing"]))
            except (EmptyDrawingError, ValueError):
                continue
            img = render_simplified(drawing)
            if img.tobytes() in seen or _same_as_any(img, bitmaps):
                continue
            seen.add(img.tobytes())
            yield img, drawing


def category_sources(data_dir: Path, category: str) -> tuple[Path | None, list[Path]]:
    """The category's sample bitmap file (or None) and its stroke files, in reading order."""
    data_dir = Path(data_dir)
    samples = data_dir / "numpy_bitmap_samples" / f"{category}.npy"
    strokes = []
    for fmt in RENDERED_STROKE_FOLDERS:
        path = category_files(data_dir, fmt).get(category) if (data_dir / fmt).is_dir() else None
        if path is not None:
            strokes.append(path)
    return (samples if samples.is_file() else None), strokes


def category_bitmaps(data_dir: Path, category: str, cap: int = MAX_STROKE_DRAWINGS) -> np.ndarray:
    """uint8 (n, 28, 28): the category's sample bitmaps then its rendered stroke drawings, no repeats."""
    imgs = [b for b, _ in rendered_drawings(*category_sources(data_dir, category), cap)]
    return np.array(imgs, np.uint8).reshape(-1, 28, 28)


@dataclass
class ProtoSplits:
    classes: list[str]
    x: dict[str, np.ndarray]  # uint8 (n, 28, 28) per split
    y: dict[str, np.ndarray]  # int32 class index per split

    def counts(self) -> dict[str, dict[str, int]]:
        return {c: {s: int((self.y[s] == i).sum()) for s in PROTO_SPLITS} for i, c in enumerate(self.classes)}


def untrained_categories(data_dir: Path, trained: list[str]) -> list[str]:
    """Every category with drawings here that the CNN did not train on, sorted."""
    found: set[str] = set()
    for fmt in ("numpy_bitmap_samples", "simplified", "simplified_kaggle"):
        if (Path(data_dir) / fmt).is_dir():
            found |= set(category_files(data_dir, fmt))
    return sorted(found - set(trained))


def load_proto_splits(data_dir: Path, categories: list[str]) -> ProtoSplits:
    parts: dict[str, tuple[list, list]] = {s: ([], []) for s in PROTO_SPLITS}
    for label, name in enumerate(categories):
        imgs = category_bitmaps(data_dir, name)
        assign = np.array([proto_split(b) for b in imgs])
        for s in PROTO_SPLITS:
            parts[s][0].append(imgs[assign == s])
            parts[s][1].append(np.full(int((assign == s).sum()), label, np.int32))
    x = {s: np.concatenate([np.zeros((0, 28, 28), np.uint8), *parts[s][0]]) for s in PROTO_SPLITS}
    y = {s: np.concatenate([np.zeros(0, np.int32), *parts[s][1]]) for s in PROTO_SPLITS}
    return ProtoSplits(list(categories), x, y)
