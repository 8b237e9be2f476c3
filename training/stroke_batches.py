"""Stroke shards -> the RNN's batches, streamed with ``tf.data``: memory independent of the data's size.

Each drawing of a ``ShardSet`` of strokes (read in the shards' mixed, shuffled order) becomes its
``sketch.sequence`` rows, plus ``copies`` augmented versions (``training.augment``, a
seeded RNG, new ones every pass) when training; a bounded shuffle buffer spreads a drawing's
copies apart, and batches are grouped by length (``bucket_by_sequence_length``: little padding)
and zero-padded at the end, as ``sketch.sequence.pad_batch`` pads. What stays in memory is the
shards' shuffle buffer, this one and the partly filled batches, whatever the number of drawings.
"""

from __future__ import annotations

import numpy as np

from sketch.drawing import Drawing
from sketch.sequence import FEATURES, normalized_to_sequence, pad_batch
from training.augment import augment
from training.shards import ShardSet

SHUFFLE_BUFFER = 4_096  # sequences (<= 2.4 KB each at 200 rows)


def length_boundaries(max_len: int) -> list[int]:
    """Bucket edges for sequences of 1..max_len rows: finer for the short, common ones."""
    return sorted({int(b) for b in np.geomspace(8, max(max_len, 9), 10)})


def sequences(data: ShardSet, split: str, max_len: int, shuffle: bool = False, seed: int = 0, copies: int = 0):
    """``(float32 (n, 3) sequence, int32 label)`` per drawing (then its augmented copies).

    The sequences are made in a ``numpy_function`` of a sequential ``map`` (not a generator that
    iterates the shards: that waits on tf.data's own threads and can deadlock on few cores), so the
    drawings arrive in the shards' order and the augmentation RNG, seeded by ``seed``, draws in a
    fixed order: a run is reproducible, and every pass gets new augmentations.
    """
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    count = 1 + copies

    def make(points: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        drawing = Drawing(points, lengths)
        seqs = [normalized_to_sequence(drawing, max_len)]
        seqs += [normalized_to_sequence(augment(drawing, rng), max_len) for _ in range(copies)]
        return pad_batch(seqs), np.array([len(s) for s in seqs], np.int32)

    def to_sequences(points, lengths, label):
        x, n = tf.numpy_function(make, [points, lengths], (tf.float32, tf.int32), stateful=True)
        return tf.ensure_shape(x, (count, None, FEATURES)), tf.ensure_shape(n, (count,)), tf.fill([count], label)

    def one_by_one(x, n, y):
        return tf.data.Dataset.from_tensor_slices((x, n, y))

    def unpadded(x, n, y):
        return x[:n], y

    return data.strokes(split, shuffle, seed).map(to_sequences).flat_map(one_by_one).map(unpadded)


def batches(
    data: ShardSet,
    split: str,
    batch_size: int,
    max_len: int,
    shuffle: bool = False,
    seed: int = 0,
    copies: int = 0,
    repeat: bool = False,
    weights: dict[int, float] | None = None,
):
    """Zero-padded ``(float32 (b, t, 3), int32 labels)`` batches of similar lengths, and per-drawing
    weights from ``weights`` (class -> weight) when given.

    ``repeat``: endless (an epoch is then a number of steps; only full batches). Otherwise one pass,
    ending with each length's last, partial batch.
    """
    import tensorflow as tf

    ds = sequences(data, split, max_len, shuffle, seed, copies)
    if repeat:
        ds = ds.repeat()
    if shuffle:
        ds = ds.shuffle(SHUFFLE_BUFFER, seed=seed)
    bounds = length_boundaries(max_len)
    ds = ds.bucket_by_sequence_length(
        lambda x, _: tf.shape(x)[0],
        bounds,
        [batch_size] * (len(bounds) + 1),
        padded_shapes=([None, FEATURES], []),
    )
    if weights is not None:
        table = tf.constant([weights[i] for i in range(len(data.classes))], tf.float32)
        ds = ds.map(lambda x, y: (x, y, tf.gather(table, y)))
    return ds.prefetch(2)


def counted(ds):
    """A one-pass dataset with its number of batches known, counted by a pass over it: Keras then
    counts validation steps instead of warning every epoch that the data ran out."""
    import tensorflow as tf

    n = int(ds.reduce(np.int64(0), lambda n, _: n + 1))
    return ds.apply(tf.data.experimental.assert_cardinality(n))
