"""Where shards live and what is in them: the file system behind a path, TFRecord records, shard writing.

``training.prepare`` converts official files with these pieces and ``training.shards`` reads what
they wrote. A record holds no label: its shard's category is the label. Paths go through
``tf.io.gfile`` for URLs (``gs://``, ``s3://``) and plain ``os`` calls for local paths.
"""

from __future__ import annotations

import hashlib
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


def strokes_items(files: list[str], limit: int | None, skipped: dict) -> Iterator[tuple[str, Callable[[], bytes]]]:
    from sketch.strokes import EmptyDrawingError, normalize, parse_strokes, to_dataset_format

    seen_ids: set[str] = set()
    seen: set[bytes] = set()
    count = 0
    for path in files:
        for lineno, item in qd.iter_ndjson_lines(path):
            if limit is not None and count >= limit:
                return
            key_id = item.get("key_id")
            if key_id is not None:
                if str(key_id) in seen_ids:
                    skipped["same key_id"] = skipped.get("same key_id", 0) + 1
                    continue
                seen_ids.add(str(key_id))
            try:
                strokes = normalize(parse_strokes(item["drawing"]))
            except EmptyDrawingError:
                skipped["no points"] = skipped.get("no points", 0) + 1
                continue
            except ValueError as exc:
                raise qd.DataError(f"{path}:{lineno}: {exc}") from None
            key = qd.strokes_key(to_dataset_format(strokes))
            digest = hashlib.blake2b(key, digest_size=8).digest()
            if digest in seen:
                skipped["identical strokes"] = skipped.get("identical strokes", 0) + 1
                continue
            seen.add(digest)
            count += 1
            yield qd.split_of(key), lambda strokes=strokes: strokes_record(strokes)


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
