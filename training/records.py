"""Where shards live and what is in them: the file system behind a path, the source files of each
kind of record, TFRecord records, shard writing.

``training.prepare`` converts official files with these pieces and ``training.shards`` reads what
they wrote. A record holds no label: its shard's category is the label. Paths go through
``tf.io.gfile`` for URLs (``gs://``, ``s3://``) and plain ``os`` calls for local paths.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from sketch.drawing import Drawing
from sketch.raster import render_simplified
from training.augment import augment
from training.data import BITMAP_SIZE, STROKE_FOLDERS, DataError, iter_bitmap_chunks, split_of
from training.proto_data import RENDERED_STROKE_FOLDERS, proto_split, rendered_drawings


class _LocalFiles:
    """The part of ``tf.io.gfile`` used here, for local paths: TensorFlow's import (seconds of CPU)
    is then paid only by the worker processes that write shards, not by every up-to-date check."""

    isdir = staticmethod(os.path.isdir)
    exists = staticmethod(os.path.exists)
    remove = staticmethod(os.remove)
    GFile = staticmethod(open)

    @staticmethod
    def listdir(path: str) -> list[str]:
        return os.listdir(path)

    @staticmethod
    def stat(path: str):
        st = os.stat(path)
        return type("Stat", (), {"length": st.st_size, "mtime_nsec": st.st_mtime_ns})

    @staticmethod
    def makedirs(path: str) -> None:
        os.makedirs(path, exist_ok=True)

    @staticmethod
    def rename(src: str, dst: str, overwrite: bool = False) -> None:
        os.replace(src, dst)

    @staticmethod
    def glob(pattern: str) -> list[str]:
        import glob

        return glob.glob(pattern)


def fs(path: str | Path):
    """``tf.io.gfile`` for URLs (``gs://``, ``s3://``...), plain ``os`` calls for local paths."""
    if "://" in str(path):
        import tensorflow as tf

        return tf.io.gfile
    return _LocalFiles


def join(*parts: str | Path) -> str:
    """Join path parts as strings (``pathlib`` would turn ``gs://b`` into ``gs:/b``)."""
    return "/".join([str(parts[0]).rstrip("/"), *(str(p).strip("/") for p in parts[1:])])


# Source folders of each kind of record, in the order they are read. A category with no
# numpy_bitmap file gets bitmap records rendered from RENDERED_FOLDERS (``rendered_items``).
KINDS = {"bitmap": ("numpy_bitmap",), "strokes": STROKE_FOLDERS}
SUFFIXES = {"bitmap": (".npy",), "strokes": (".ndjson.gz", ".ndjson", ".npz")}
RENDERED_FOLDERS = ("numpy_bitmap_samples", *RENDERED_STROKE_FOLDERS)
# Training copies of each rendered stroke drawing, each with its own random stroke-level
# distortion: a category with a few dozen drawings gets some of the variety a bitmap category has.
AUGMENTED_COPIES = 8
# What a strokes record holds: 2 = every folder of KINDS["strokes"], capped by ``training.data.cap_order``
# (1 read only simplified/ and raw/, capped by file order). Shards of another version are prepared again.
STROKES_VERSION = 2


def list_sources(data_dir: str | Path, kind: str) -> dict[str, list[str]]:
    """``{category: [source files]}`` for one kind of record, in the order the sources are read.

    Bitmaps: a category's numpy_bitmap file, else its files in RENDERED_FOLDERS."""
    found = _list_folders(data_dir, KINDS[kind], SUFFIXES[kind])
    if kind == "bitmap":
        rendered = _list_folders(data_dir, RENDERED_FOLDERS, (".npy", ".ndjson.gz", ".ndjson"))
        found.update({c: files for c, files in rendered.items() if c not in found})
    if not found:
        raise DataError(f"no {' or '.join(f + '/' for f in KINDS[kind])} folder with data files in {data_dir}")
    return found


def is_rendered(files: list[str]) -> bool:
    """Whether a bitmap category's sources are stroke drawings (and samples) rather than numpy_bitmap."""
    return not files[0].endswith(".npy") or files[0].rsplit("/", 2)[-2] != "numpy_bitmap"


def _list_folders(data_dir: str | Path, folders: tuple[str, ...], suffixes: tuple[str, ...]) -> dict[str, list[str]]:
    gfile = fs(data_dir)
    found: dict[str, list[str]] = {}
    for folder in folders:
        path = join(data_dir, folder)
        if not gfile.isdir(path):
            continue
        for name in sorted(gfile.listdir(path)):
            name = name.rstrip("/")
            suffix = next((s for s in suffixes if name.endswith(s)), None)
            if suffix is None:
                continue
            category = name[: -len(suffix)]
            files = found.setdefault(category, [])
            # Plain and gzipped copies of one file: the first listed (gz sorts after plain) wins.
            if not any(f.rsplit("/", 2)[-2] == folder for f in files):
                files.append(join(path, name))
    return found


def _bytes(value: bytes):
    import tensorflow as tf

    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))


def _ints(values):
    import tensorflow as tf

    return tf.train.Feature(int64_list=tf.train.Int64List(value=values))


def bitmap_record(row: np.ndarray) -> bytes:
    import tensorflow as tf

    features = {"bitmap": _bytes(row.tobytes())}
    return tf.train.Example(features=tf.train.Features(feature=features)).SerializeToString()


def bitmap_record_prefix() -> bytes:
    """The serialised ``Example`` of a bitmap is a constant prefix then the 784 bytes: building
    the bytes directly is ~10x faster than the protobuf API (a test checks they are identical)."""
    record = bitmap_record(np.zeros(BITMAP_SIZE, np.uint8))
    prefix = record[:-BITMAP_SIZE]
    assert record == prefix + bytes(BITMAP_SIZE) and bitmap_record(np.ones(BITMAP_SIZE, np.uint8)) == (
        prefix + bytes([1]) * BITMAP_SIZE
    ), "unexpected Example layout"
    return prefix


def strokes_record(drawing: Drawing) -> bytes:
    import tensorflow as tf

    points = drawing.points.astype(np.uint8)  # normalised: integers 0-255
    features = {
        "points": _bytes(points.tobytes()),
        "stroke_lengths": _ints(drawing.counts.tolist()),
    }
    return tf.train.Example(features=tf.train.Features(feature=features)).SerializeToString()


def bitmap_items(files: list[str], limit: int | None) -> Iterator[tuple[str, Callable[[], bytes]]]:
    """``(split, record maker)`` per drawing: a record is only built when its shard is not done yet."""
    prefix = bitmap_record_prefix()
    for chunk in iter_bitmap_chunks(files[0], limit=limit):
        for row in chunk:
            content = row.tobytes()
            yield split_of(content), lambda record=prefix + content: record


def rendered_items(files: list[str], limit: int | None, copies: int) -> Iterator[tuple[str, Callable[[], bytes]]]:
    """``bitmap_items`` for a category known by stroke drawings (``training.proto_data``): each
    drawing rendered exactly as the API renders a player's, split by ``proto_split`` (its ``bank``
    is the training split) so the held-out drawings are the ones the prototypes were measured on;
    each training stroke drawing also gives ``copies`` re-renderings under ``training.augment``
    (seeded by the drawing: the same records on every run)."""
    prefix = bitmap_record_prefix()
    samples = next((f for f in files if f.endswith(".npy")), None)
    strokes = [f for f in files if not f.endswith(".npy")]
    for n, (bitmap, drawing) in enumerate(rendered_drawings(samples, strokes)):
        if limit is not None and n >= limit:
            return
        content = bitmap.tobytes()
        split = {"bank": "train"}.get(proto_split(bitmap), proto_split(bitmap))
        yield split, lambda record=prefix + content: record
        if split != "train" or drawing is None:
            continue
        rng = np.random.default_rng(int.from_bytes(content[::7][:8].ljust(8, b"\0"), "little") + n)
        for _ in range(copies):
            yield split, lambda d=drawing, r=rng: prefix + render_simplified(augment(d, r)).tobytes()


class ShardWriter:
    """Records of one category and split into numbered shards; a shard already on disk is kept."""

    def __init__(self, out_dir: str, kind: str, split: str, category: str, shard_size: int):
        self.folder = join(out_dir, kind, split)
        self.rel = f"{kind}/{split}"
        self.prefix = category.replace("/", "_")
        self.shard_size = shard_size
        self.index = 0
        self.count = 0
        self.buffer: list[bytes] = []
        self.files: list[str] = []
        self.reused = 0
        self.done = self._exists()

    def _name(self) -> str:
        return f"{self.prefix}-{self.index:05d}.tfrecord"

    def _exists(self) -> bool:
        """Whether the shard now being filled is already on disk (then its records need not be built)."""
        return fs(self.folder).exists(join(self.folder, self._name()))

    def add(self, record: bytes | None) -> None:
        if record is not None:
            self.buffer.append(record)
        self.count += 1
        if self.count % self.shard_size == 0:
            self.flush()

    def flush(self) -> None:
        if self.count == self.index * self.shard_size:
            return  # nothing since the last shard
        import tensorflow as tf

        name = self._name()
        final = join(self.folder, name)
        if self.buffer:
            tmp = f"{final}.tmp-{os.getpid()}"
            with tf.io.TFRecordWriter(tmp) as writer:
                for record in self.buffer:
                    writer.write(record)
            fs(final).rename(tmp, final, overwrite=True)
        else:
            self.reused += 1
        self.files.append(f"{self.rel}/{name}")
        self.buffer = []
        self.index += 1
        self.done = self._exists()


def is_shard_dir(path: str | Path) -> bool:
    """Whether ``path`` holds prepared shards (a manifest of this module's kind) rather than official files."""
    manifest = join(path, "manifest.json")
    if not fs(manifest).exists(manifest):
        return False
    try:
        content = json.loads(fs(manifest).GFile(manifest).read())
    except ValueError:
        return False
    return isinstance(content, dict) and "format_version" in content and "kinds" in content


def absolute(data_dir: str | Path) -> str:
    """One spelling of a source folder (a URL as given, a local path resolved): shards know their
    sources by path, so ``../shared/quickdraw`` and its absolute path must name the same files."""
    return str(data_dir) if "://" in str(data_dir) else str(Path(data_dir).resolve())


def default_shard_dir(data_dir: str | Path, max_per_class: int | None) -> str:
    """``data/shards/<folder>-<cap>-<hash of its full path>`` (root: ``DEEPDRAW_SHARDS_ROOT``): one shard
    folder per source folder and cap."""
    source = absolute(data_dir)
    digest = hashlib.sha256(source.encode()).hexdigest()[:8]
    name = source.rstrip("/").rsplit("/", 1)[-1] or "data"
    root = os.environ.get("DEEPDRAW_SHARDS_ROOT", str(Path("data") / "shards"))
    return str(Path(root) / f"{name}-{max_per_class or 'all'}-{digest}")
