"""Readers for the official Quick, Draw! formats and the deterministic train/val/test split.

Formats (https://github.com/googlecreativelab/quickdraw-dataset):
- ``numpy_bitmap/<category>.npy``: uint8 (N, 784), 28x28, ink 255 on 0.
- ``simplified/<category>.ndjson[.gz]``: one JSON object per line, ``drawing`` = [[xs], [ys]] per stroke, 0-255.
- ``raw/<category>.ndjson[.gz]``: the same with ``[[xs], [ys], [ts]]`` in device pixels.
- ``simplified_kaggle/``: simplified lines without ``key_id``; ``strokes_extra/``: lines whose ``format``
  says their scale (``sketchrnn-stroke3-abs``: absolute points of sketch-rnn strokes).
- ``sketchrnn/<category>.npz``: sketch-rnn stroke-3 arrays under ``train``/``valid``/``test``.

The split is decided by a hash of each drawing's content (its bitmap bytes or its strokes), so a
drawing lands in the same split whatever the caps or file order, and exact duplicates can never
straddle train and test.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import pickle
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

BITMAP_SIZE = 28 * 28
SPLITS = ("train", "val", "test")
# Percent of drawings per split, by content hash. The test split is never trained on.
VAL_PERCENT = 10
TEST_PERCENT = 10
# Stroke folders in the order their drawings are taken (the first copy of a drawing wins):
# official lines with key_ids first, then the copies without.
STROKE_FOLDERS = ("simplified", "raw", "simplified_kaggle", "sketchrnn", "strokes_extra")
STROKE_FORMATS = (None, "sketchrnn-stroke3-abs")  # an ndjson line's ``format``: None is the official scale


class DataError(ValueError):
    """A data file or category that cannot be used; the message names it."""


def category_files(data_dir: Path, fmt: str) -> dict[str, Path]:
    """``{category: file}`` for one format folder (``numpy_bitmap``, ``simplified``, ``raw``, ...)."""
    folder = Path(data_dir) / fmt
    if not folder.is_dir():
        raise DataError(f"no {fmt}/ folder in {data_dir}")
    files: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        name = path.name
        for suffix in (".npy", ".ndjson.gz", ".ndjson"):
            if name.endswith(suffix):
                files.setdefault(name[: -len(suffix)], path)
    return files


def select_categories(available: dict[str, Path], wanted: list[str] | None) -> dict[str, Path]:
    """The wanted categories (all when None), or an error naming the unknown ones and what exists."""
    if not wanted:
        return available
    unknown = [c for c in wanted if c not in available]
    if unknown:
        raise DataError(f"unknown categories {unknown}; available: {', '.join(sorted(available))}")
    return {c: available[c] for c in wanted}


def read_bitmaps(path: Path, limit: int | None = None) -> np.ndarray:
    """A ``numpy_bitmap`` file as uint8 (N, 784); never unpickles, checks shape and dtype."""
    try:
        arr = np.load(path, allow_pickle=False, mmap_mode="r")
    except (OSError, ValueError, EOFError) as exc:
        raise DataError(f"{path}: not a readable .npy file ({exc})") from None
    if arr.dtype != np.uint8 or arr.ndim != 2 or arr.shape[1] != BITMAP_SIZE:
        raise DataError(f"{path}: expected uint8 (N, {BITMAP_SIZE}), found {arr.dtype} {arr.shape}")
    return np.array(arr[:limit])


def open_binary(path: Path | str):
    """A binary file object for a local path or, through ``tf.io.gfile``, a ``gs://``/``s3://`` URL."""
    if "://" in str(path):
        import tensorflow as tf

        return tf.io.gfile.GFile(str(path), "rb")
    return open(path, "rb")


def iter_ndjson(path: Path | str, limit: int | None = None) -> Iterator[dict]:
    """Stream the drawings of a ``simplified``/``raw`` ndjson file (plain or gzipped).

    A malformed line raises ``DataError`` naming ``file:line``.
    """
    for _, item in iter_ndjson_lines(path, limit):
        yield item


def iter_ndjson_lines(path: Path | str, limit: int | None = None) -> Iterator[tuple[int, dict]]:
    """``(line number, drawing)`` for each drawing of an ndjson file, as ``iter_ndjson``."""
    count = 0
    try:
        with open_binary(path) as raw:
            f = io.TextIOWrapper(gzip.GzipFile(fileobj=raw) if str(path).endswith(".gz") else raw, encoding="utf-8")
            for lineno, line in enumerate(f, 1):
                if limit is not None and count >= limit:
                    return
                if not line.strip():
                    continue
                try:
                    item = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise DataError(f"{path}:{lineno}: malformed JSON ({exc.msg})") from None
                drawing = item.get("drawing") if isinstance(item, dict) else None
                if not isinstance(drawing, list) or not all(isinstance(s, list) and len(s) in (2, 3) for s in drawing):
                    raise DataError(f"{path}:{lineno}: no valid 'drawing' ([[xs], [ys]] per stroke)")
                count += 1
                yield lineno, item
    except (OSError, EOFError, UnicodeDecodeError, gzip.BadGzipFile) as exc:
        raise DataError(f"{path}: cannot be read ({exc})") from None


def iter_stroke_drawings(path: Path | str) -> Iterator[tuple[str, str | None, list]]:
    """``(where, key_id or None, drawing)`` for each drawing of a stroke file (ndjson or sketch-rnn
    ``.npz``), ``drawing`` as ``[[xs], [ys]]`` per stroke; ``where`` (``file:line``) names it in errors."""
    if str(path).endswith(".npz"):
        yield from iter_sketchrnn(path)
        return
    for lineno, item in iter_ndjson_lines(path):
        if item.get("format") not in STROKE_FORMATS:
            raise DataError(f"{path}:{lineno}: unknown stroke format {item.get('format')!r}")
        key_id = item.get("key_id")
        yield f"{path}:{lineno}", (str(key_id) if key_id is not None else None), item["drawing"]


def iter_sketchrnn(path: Path | str) -> Iterator[tuple[str, None, list]]:
    """The drawings of a sketch-rnn ``.npz`` (read whole: one category's file) as ``iter_stroke_drawings``.

    Its arrays are object arrays, so they are unpickled: read only files you trust (the official ones).
    """
    from sketch.sequence import stroke3_to_drawing

    with open_binary(path) as f:
        content = f.read()
    if not content.startswith(b"PK"):  # not a zip: np.load would try to unpickle the whole file
        raise DataError(f"{path}: not a sketch-rnn .npz (not a zip archive)")
    try:
        with np.load(io.BytesIO(content), allow_pickle=True, encoding="latin1") as npz:
            items = [(s, i, np.asarray(a)) for s in ("train", "valid", "test") for i, a in enumerate(npz[s])]
    except (OSError, ValueError, KeyError, EOFError, pickle.UnpicklingError) as exc:
        raise DataError(f"{path}: not a sketch-rnn .npz with train/valid/test ({exc})") from None
    for split, index, item in items:
        where = f"{path}: {split} drawing {index}"
        try:
            drawing = stroke3_to_drawing(item)
        except ValueError as exc:
            raise DataError(f"{where}: {exc}") from None
        yield where, None, [s.T.tolist() for s in drawing]


def iter_bitmap_chunks(path: Path | str, rows: int = 8192, limit: int | None = None) -> Iterator[np.ndarray]:
    """A ``numpy_bitmap`` file as uint8 (<= rows, 784) chunks, never the whole file in memory.

    Reads the .npy header and then plain bytes, so it streams from ``gs://`` as from a local disk
    (``np.load(mmap_mode=...)`` needs a local file); a truncated file is an error naming it.
    """
    with open_binary(path) as f:
        try:
            version = np.lib.format.read_magic(f)
            read_header = (
                np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            )
            shape, fortran, dtype = read_header(f)
        except (ValueError, OSError, EOFError) as exc:
            raise DataError(f"{path}: not a readable .npy file ({exc})") from None
        if dtype != np.uint8 or len(shape) != 2 or shape[1] != BITMAP_SIZE or fortran:
            raise DataError(f"{path}: expected uint8 (N, {BITMAP_SIZE}), found {dtype} {shape}")
        total = shape[0] if limit is None else min(shape[0], limit)
        done = 0
        while done < total:
            n = min(rows, total - done)
            buf = f.read(n * BITMAP_SIZE)
            if len(buf) != n * BITMAP_SIZE:
                got = done + len(buf) // BITMAP_SIZE
                raise DataError(f"{path}: truncated: the header says {shape[0]} drawings, the data ends after {got}")
            yield np.frombuffer(buf, dtype=np.uint8).reshape(n, BITMAP_SIZE)
            done += n


def split_of(content: bytes) -> str:
    """``train``, ``val`` or ``test`` for a drawing, from a stable hash of its content."""
    bucket = int.from_bytes(hashlib.blake2b(content, digest_size=4).digest(), "little") % 100
    if bucket < TEST_PERCENT:
        return "test"
    if bucket < TEST_PERCENT + VAL_PERCENT:
        return "val"
    return "train"


def cap_order(key: bytes) -> int:
    """Where a drawing stands when a category is capped: the smallest values are kept, so a cap is
    deterministic, ignores file order and leaves the split proportions alone."""
    return int.from_bytes(hashlib.blake2b(key, digest_size=8, person=b"cap").digest(), "big")


def strokes_key(drawing: list) -> bytes:
    """Content of a stroke drawing for hashing: identical strokes give identical keys."""
    return json.dumps(drawing, separators=(",", ":")).encode()


@dataclass
class BitmapSplits:
    """Bitmaps and integer labels per split, with the class names in label order."""

    classes: list[str]
    x: dict[str, np.ndarray]
    y: dict[str, np.ndarray]

    def counts(self) -> dict[str, dict[str, int]]:
        """Per-class drawing counts for each split (reported in the model's metadata)."""
        return {name: {s: int((self.y[s] == i).sum()) for s in SPLITS} for i, name in enumerate(self.classes)}


def load_bitmap_splits(
    data_dir: Path, categories: list[str] | None = None, max_per_class: int | None = None
) -> BitmapSplits:
    """Read the ``numpy_bitmap`` categories and split every drawing by its content hash."""
    files = select_categories(category_files(data_dir, "numpy_bitmap"), categories)
    classes = sorted(files)
    parts: dict[str, tuple[list, list]] = {s: ([], []) for s in SPLITS}
    for label, name in enumerate(classes):
        rows = read_bitmaps(files[name], max_per_class)
        assign = np.array([split_of(r.tobytes()) for r in rows])
        for s in SPLITS:
            sel = rows[assign == s]
            parts[s][0].append(sel)
            parts[s][1].append(np.full(len(sel), label, dtype=np.int32))
    x = {s: np.concatenate(parts[s][0]).reshape(-1, 28, 28) for s in SPLITS}
    y = {s: np.concatenate(parts[s][1]) for s in SPLITS}
    return BitmapSplits(classes, x, y)


def manifest_hash(files: list[Path]) -> str:
    """Hash of the data files' names, sizes and first MiB: identifies the data a model saw."""
    h = hashlib.sha256()
    for path in sorted(files):
        h.update(path.name.encode())
        h.update(str(path.stat().st_size).encode())
        with open(path, "rb") as f:
            h.update(f.read(1 << 20))
    return h.hexdigest()[:16]
