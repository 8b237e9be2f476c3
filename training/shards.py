"""Read the shards written by ``training.prepare`` with ``tf.data``, at any size of data.

A training split that fits in ``IN_MEMORY_BYTES`` is read once into memory and shuffled whole every
epoch. A larger one streams: the manifest's shard files (one category each; the label is the
category's index in the classes a run picks) -> one stream per class, mixed by drawing the class of
each next record at random in proportion to its size -> a bounded shuffle buffer -> batch -> parse
the whole batch in one op -> prefetch. What stays in memory then is the shuffle buffer and one open
reader per class, whatever the number of drawings. Class counts and weights come from the
manifest, so nothing is counted by reading the data.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from training.data import SPLITS, DataError, select_categories
from training.records import STROKES_VERSION, join

SHUFFLE_BUFFER = 20_000  # records (~16 MB of bitmaps)
# A training split up to this size is read into memory once and shuffled whole: the shard readers
# would otherwise compete with the training step for the same cores on every batch.
IN_MEMORY_BYTES = 2 << 30
BITMAP_BYTES = 28 * 28
CYCLE_LENGTH = 64  # shards read at once when evaluating
READ_BUFFER = 256 << 10  # bytes per open shard reader


def read_manifest(shard_dir: str | Path) -> dict:
    import tensorflow as tf

    path = join(shard_dir, "manifest.json")
    if not tf.io.gfile.exists(path):
        raise DataError(f"{shard_dir}: no manifest.json (run python -m training.prepare)")
    return json.loads(tf.io.gfile.GFile(path).read())


class ShardSet:
    """One kind of record (``bitmap`` or ``strokes``) of a shard folder, for a set of classes.

    ``extra`` shard folders (e.g. players' drawings exported by ``training.export_submissions``) add
    their train and val drawings to the classes this set has; their test drawings are held out
    (``extra_counts`` says how many) so the test split, and every figure on it, stays the main
    folder's, comparable with models trained without them. Their categories this set lacks are
    left out and counted in ``extra_ignored``.
    """

    def __init__(
        self,
        shard_dir: str | Path,
        kind: str = "bitmap",
        categories: list[str] | None = None,
        extra: list[str | Path] | tuple = (),
    ):
        self.shard_dir = str(shard_dir)
        self.manifest = read_manifest(shard_dir)
        self.kind = kind
        self.info = self._kind_info(self.shard_dir, self.manifest)
        self.classes = sorted(select_categories({c: c for c in self.info["classes"]}, categories))
        # class -> split -> [(shard path, records)]
        self._files = {c: {s: [] for s in SPLITS} for c in self.classes}
        self._add(self.shard_dir, self.manifest, SPLITS)
        self.extra_counts: dict[str, dict[str, int]] = {}
        self.extra_ignored: dict[str, int] = {}
        self.extra_infos: list[dict] = []
        for folder in map(str, extra):
            manifest = read_manifest(folder)
            info = self._kind_info(folder, manifest)
            self.extra_infos.append(info)
            self._add(folder, manifest, ("train", "val"))
            for c in info["classes"]:
                n = info["counts"][c]
                if c in self._files:
                    mine = self.extra_counts.setdefault(c, dict.fromkeys(SPLITS, 0))
                    for split in SPLITS:
                        mine[split] += n[split]
                else:
                    self.extra_ignored[c] = self.extra_ignored.get(c, 0) + sum(n.values())

    def _kind_info(self, folder: str, manifest: dict) -> dict:
        if manifest["kinds"].get(self.kind) is None:
            raise DataError(f"{folder}: no {self.kind} shards (prepared: {', '.join(manifest['kinds'])})")
        info = manifest["kinds"][self.kind]
        if self.kind == "strokes" and info.get("strokes_version") != STROKES_VERSION:
            raise DataError(
                f"{folder}: stroke shards of an older version (simplified/ and raw/ only): prepare them again "
                "from the official files (python -m training.prepare --kinds strokes)"
            )
        return info

    def _add(self, folder: str, manifest: dict, splits: tuple[str, ...]) -> None:
        info, size = manifest["kinds"][self.kind], manifest["shard_size"]
        for c in self.classes:
            if c not in info["classes"]:
                continue
            for split in splits:
                n, rels = info["counts"][c][split], info["shards"][c][split]
                # Every shard of a category is full but its last.
                self._files[c][split] += [(join(folder, r), min(size, n - k * size)) for k, r in enumerate(rels)]

    def counts(self) -> dict[str, dict[str, int]]:
        """Drawings per class and split that this set reads (extra test drawings are held out)."""
        return {c: {s: sum(n for _, n in files) for s, files in self._files[c].items()} for c in self.classes}

    def size(self, split: str) -> int:
        return sum(n for c in self.classes for _, n in self._files[c][split])

    def class_counts(self, split: str = "train") -> np.ndarray:
        return np.array([sum(n for _, n in self._files[c][split]) for c in self.classes])

    def files(self, split: str) -> tuple[list[str], list[int]]:
        """Every shard of a split with its label, in class order."""
        paths, labels = [], []
        for label, c in enumerate(self.classes):
            for path, _ in self._files[c][split]:
                paths.append(path)
                labels.append(label)
        return paths, labels

    def file_sizes(self, split: str) -> list[int]:
        """Records in each of ``files(split)``."""
        return [n for c in self.classes for _, n in self._files[c][split]]

    def records(self, split: str, shuffle: bool, seed: int = 0, shard: tuple[int, int] | None = None):
        """``(serialised record, label)`` pairs; ``shard=(index, count)`` keeps every count-th file.

        In training order (``shuffle``) each class is a stream of its shard files (in random order),
        and each next record comes from a class drawn at random in proportion to its drawings left in
        the mix: every stretch of an epoch has the classes' true proportions. (Reading the files
        round-robin would end every pass with only the largest classes left.) Evaluation reads the
        files in parallel, in a fixed order.
        """
        import tensorflow as tf

        paths, labels = self.files(split)
        sizes = self.file_sizes(split)
        if shard is not None:
            index, count = shard
            paths, labels, sizes = paths[index::count], labels[index::count], sizes[index::count]
            if not paths:
                raise DataError(f"{self.shard_dir}: {split} has fewer shards than the {count} workers")

        def read(path):
            return tf.data.TFRecordDataset(path, buffer_size=READ_BUFFER)

        if not shuffle:
            files = tf.data.Dataset.from_tensor_slices((paths, np.array(labels, dtype=np.int32)))
            return files.interleave(
                lambda path, label: read(path).map(lambda r: (r, label)),
                cycle_length=min(len(paths), CYCLE_LENGTH),
                num_parallel_calls=tf.data.AUTOTUNE,
            )
        streams, weights = [], []
        for label in sorted(set(labels)):
            mine = [p for p, lab in zip(paths, labels, strict=True) if lab == label]
            files = tf.data.Dataset.from_tensor_slices(mine).shuffle(len(mine), seed=seed + label)
            tag = tf.constant(label, tf.int32)
            streams.append(files.flat_map(read).map(lambda r, tag=tag: (r, tag)))
            weights.append(sum(n for n, lab in zip(sizes, labels, strict=True) if lab == label))
        total = float(sum(weights))
        return tf.data.Dataset.sample_from_datasets(
            streams, [w / total for w in weights], seed=seed, stop_on_empty_dataset=False
        )

    def arrays(self, split: str, batch_size: int = 4096) -> tuple[np.ndarray, np.ndarray]:
        """Every bitmap of a split in memory: uint8 (n, 28, 28) and int32 labels (for evaluation and
        calibration, which need the whole split at once)."""
        xs, ys = [], []
        for x, y in self.bitmaps(split, batch_size):
            xs.append(x.numpy()[..., 0].astype(np.uint8))
            ys.append(y.numpy())
        if not xs:
            return np.zeros((0, 28, 28), np.uint8), np.zeros(0, np.int32)
        return np.concatenate(xs), np.concatenate(ys).astype(np.int32)

    def bitmaps(
        self,
        split: str,
        batch_size: int,
        shuffle: bool = False,
        seed: int = 0,
        repeat: bool = False,
        shard: tuple[int, int] | None = None,
        augment=None,
        weights: dict[int, float] | None = None,
    ):
        """Batches of ``(float32 (b, 28, 28, 1) bitmaps 0-255, int32 labels)``, and per-drawing
        weights from ``weights`` (class -> weight) when given.

        Augmentation runs in the tf.data pipeline (``num_parallel_calls``) so the exported model
        has no random op and the CPU prepares the next batch while the model trains on this one.
        """
        import tensorflow as tf

        if self.kind != "bitmap":
            raise ValueError("bitmaps() reads bitmap shards")
        if shuffle and shard is None and self.size(split) * BITMAP_BYTES <= IN_MEMORY_BYTES:
            ds = self._in_memory(split, seed, repeat, batch_size)
        else:
            ds = self._streamed(split, shuffle, seed, repeat, shard, batch_size)
        if augment is not None:
            ds = ds.map(lambda x, y: (augment(x, training=True), y), num_parallel_calls=tf.data.AUTOTUNE)
        if weights is not None:
            table = tf.constant([weights[i] for i in range(len(self.classes))], tf.float32)
            ds = ds.map(lambda x, y: (x, y, tf.gather(table, y)))
        return ds.prefetch(tf.data.AUTOTUNE)

    def _in_memory(self, split: str, seed: int, repeat: bool, batch_size: int):
        """The whole split, reshuffled every epoch, as float32 batches."""
        import tensorflow as tf

        x, y = self.arrays(split)
        ds = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(len(y), seed=seed, reshuffle_each_iteration=True)
        if repeat:
            ds = ds.repeat()
        return ds.batch(batch_size).map(
            lambda images, labels: (tf.cast(images[..., None], tf.float32), labels),
            num_parallel_calls=tf.data.AUTOTUNE,
        )

    def _streamed(self, split: str, shuffle: bool, seed: int, repeat: bool, shard, batch_size: int):
        """The split read from its shards as it goes, parsed a batch at a time."""
        import tensorflow as tf

        ds = self.records(split, shuffle, seed, shard)
        if shuffle:
            ds = ds.shuffle(SHUFFLE_BUFFER, seed=seed, reshuffle_each_iteration=True)
        if repeat:
            ds = ds.repeat()
        spec = {"bitmap": tf.io.FixedLenFeature([], tf.string)}

        def parse(records, labels):
            raw = tf.io.decode_raw(tf.io.parse_example(records, spec)["bitmap"], tf.uint8)
            return tf.cast(tf.reshape(raw, (-1, 28, 28, 1)), tf.float32), labels

        return ds.batch(batch_size).map(parse, num_parallel_calls=tf.data.AUTOTUNE)

    def strokes(self, split: str, shuffle: bool = False, seed: int = 0, shard: tuple[int, int] | None = None):
        """``(uint8 (n, 2) normalised points, int64 stroke lengths, int32 label)`` per drawing.

        The first two are a ``sketch.drawing.Drawing``'s points and counts (for augmentation and
        ``sketch.sequence.normalized_to_sequence``, the RNN's input).
        """
        import tensorflow as tf

        if self.kind != "strokes":
            raise ValueError("strokes() reads stroke shards")
        spec = {
            "points": tf.io.FixedLenFeature([], tf.string),
            "stroke_lengths": tf.io.VarLenFeature(tf.int64),
        }

        def parse(record, label):
            item = tf.io.parse_single_example(record, spec)
            points = tf.reshape(tf.io.decode_raw(item["points"], tf.uint8), (-1, 2))
            return points, tf.sparse.to_dense(item["stroke_lengths"]), label

        ds = self.records(split, shuffle, seed, shard)
        if shuffle:
            ds = ds.shuffle(SHUFFLE_BUFFER, seed=seed, reshuffle_each_iteration=True)
        return ds.map(parse, num_parallel_calls=tf.data.AUTOTUNE)


def predict(model, dataset) -> tuple[np.ndarray, np.ndarray]:
    """``(probabilities, labels)`` over a dataset of ``(x, label)`` batches, in the same order."""
    probs, labels = [], []
    for x, y in dataset:
        probs.append(np.asarray(model.predict_on_batch(x)))
        labels.append(y.numpy())
    return np.concatenate(probs), np.concatenate(labels)
