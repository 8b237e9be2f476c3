"""Where shards live and what is in them: the file system behind a path, the source files of each
kind of record, TFRecord records, shard writing.

``training.prepare`` converts official files with these pieces and ``training.shards`` reads what
they wrote. A record holds no label: its shard's category is the label. Paths go through
``tf.io.gfile`` for URLs (``gs://``, ``s3://``) and plain ``os`` calls for local paths.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from training import data as qd


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


# Source folders of each kind of record, in the order they are read.
KINDS = {"bitmap": ("numpy_bitmap",), "strokes": qd.STROKE_FOLDERS}
SUFFIXES = {"bitmap": (".npy",), "strokes": (".ndjson.gz", ".ndjson", ".npz")}
# What a strokes record holds: 2 = every folder of KINDS["strokes"], capped by ``training.data.cap_order``
# (1 read only simplified/ and raw/, capped by file order). Shards of another version are prepared again.
STROKES_VERSION = 2


def list_sources(data_dir: str | Path, kind: str) -> dict[str, list[str]]:
    """``{category: [source files]}`` for one kind of record, in the order the sources are read."""
    gfile = fs(data_dir)
    found: dict[str, list[str]] = {}
    for folder in KINDS[kind]:
        path = join(data_dir, folder)
        if not gfile.isdir(path):
            continue
        for name in sorted(gfile.listdir(path)):
            name = name.rstrip("/")
            suffix = next((s for s in SUFFIXES[kind] if name.endswith(s)), None)
            if suffix is None:
                continue
            category = name[: -len(suffix)]
            files = found.setdefault(category, [])
            # Plain and gzipped copies of one file: the first listed (gz sorts after plain) wins.
            if not any(f.rsplit("/", 2)[-2] == folder for f in files):
                files.append(join(path, name))
    if not found:
        raise qd.DataError(f"no {' or '.join(f + '/' for f in KINDS[kind])} folder with data files in {data_dir}")
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
    record = bitmap_record(np.zeros(qd.BITMAP_SIZE, np.uint8))
    prefix = record[: -qd.BITMAP_SIZE]
    assert record == prefix + bytes(qd.BITMAP_SIZE) and bitmap_record(np.ones(qd.BITMAP_SIZE, np.uint8)) == (
        prefix + bytes([1]) * qd.BITMAP_SIZE
    ), "unexpected Example layout"
    return prefix


def strokes_record(strokes: list[np.ndarray]) -> bytes:
    import tensorflow as tf

    points = np.concatenate(strokes).astype(np.uint8)  # normalised: integers 0-255
    features = {
        "points": _bytes(points.tobytes()),
        "stroke_lengths": _ints([len(s) for s in strokes]),
    }
    return tf.train.Example(features=tf.train.Features(feature=features)).SerializeToString()


def bitmap_items(files: list[str], limit: int | None) -> Iterator[tuple[str, Callable[[], bytes]]]:
    """``(split, record maker)`` per drawing: a record is only built when its shard is not done yet."""
    prefix = bitmap_record_prefix()
    for chunk in qd.iter_bitmap_chunks(files[0], limit=limit):
        for row in chunk:
            content = row.tobytes()
            yield qd.split_of(content), lambda record=prefix + content: record


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
