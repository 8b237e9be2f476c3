"""The stroke RNN: conv1d (local shape of the pen path) then bidirectional LSTMs (the order of the strokes).

The exported model takes zero-padded sequences, float32 ``(batch, time, 3)`` rows
``(dx, dy, end_of_stroke)`` from ``sketch.sequence.to_sequence``. It finds each sequence's length
from the padding itself (an all-zero row is padding and nothing else), and every layer is written
so that padding cannot change a prediction: convolutions are re-masked after each layer, the
backward LSTM reads each sequence reversed *within its length*, and the pooling is a masked mean.
No ``Masking`` layer: tf2onnx turns these plain LSTMs into ONNX ``LSTM`` nodes, and the ONNX copy
is checked against the SavedModel at export.
"""

from __future__ import annotations

import keras
from keras import layers, ops

from sketch.sequence import FEATURES


@keras.saving.register_keras_serializable("deepdraw")
class SequenceMask(layers.Layer):
    """1.0 for a real row, 0.0 for padding (an all-zero row), shape (batch, time, 1)."""

    def call(self, x):
        return ops.cast(ops.any(ops.not_equal(x, 0.0), axis=-1, keepdims=True), x.dtype)


@keras.saving.register_keras_serializable("deepdraw")
class ReverseWithinLength(layers.Layer):
    """Reverse each sequence's real rows and leave its padding at the end (tf.reverse_sequence)."""

    def call(self, x, mask):
        steps = ops.shape(x)[1]
        length = ops.cast(ops.sum(mask, axis=1), "int32")  # (batch, 1)
        position = ops.expand_dims(ops.arange(steps, dtype="int32"), 0)  # (1, time)
        index = ops.where(position < length, length - 1 - position, position)
        return ops.take_along_axis(x, ops.expand_dims(index, -1), axis=1)


@keras.saving.register_keras_serializable("deepdraw")
class MaskedMean(layers.Layer):
    """Mean over the real rows only."""

    def call(self, x, mask):
        return ops.sum(x * mask, axis=1) / ops.maximum(ops.sum(mask, axis=1), 1.0)


def make_rnn(
    num_classes: int,
    conv: tuple[tuple[int, int], ...] = ((48, 5), (64, 5), (96, 3)),
    lstm_units: int = 96,
    lstm_layers: int = 2,
    dropout: float = 0.3,
):
    """Conv1d (local shape of the pen path) then bidirectional LSTMs (the order of the strokes).

    The tutorial's model (3 conv1d, 3 bi-LSTM of 128) shrunk to two bi-LSTM layers of 96 so it trains in
    about a quarter of an hour on 2 CPU cores.
    """
    inputs = keras.Input((None, FEATURES), name="strokes")
    mask = SequenceMask(name="mask")(inputs)
    x = inputs
    for i, (filters, width) in enumerate(conv):
        # "same" convolutions pad with zeros, exactly like the batch padding: re-masking after
        # each layer keeps padded rows at zero, so the next layer sees the same thing either way.
        x = layers.Conv1D(filters, width, padding="same", activation="relu", name=f"conv{i + 1}")(x)
        x = layers.Multiply(name=f"conv{i + 1}_masked")([x, mask])
        if dropout:
            x = layers.Dropout(dropout / 2, name=f"conv{i + 1}_dropout")(x)
    reverse = ReverseWithinLength(name="reverse")
    for i in range(lstm_layers):
        last = i == lstm_layers - 1
        forward = layers.LSTM(lstm_units, return_sequences=True, name=f"lstm{i + 1}_forward")(x)
        backward = layers.LSTM(lstm_units, return_sequences=True, name=f"lstm{i + 1}_backward")(reverse(x, mask))
        if last:
            x = layers.Concatenate(name="pooled")(
                [MaskedMean(name="forward_mean")(forward, mask), MaskedMean(name="backward_mean")(backward, mask)]
            )
        else:
            # Put the backward outputs back in drawing order before the next layer reads both.
            x = layers.Concatenate(name=f"lstm{i + 1}")([forward, reverse(backward, mask)])
            x = layers.Multiply(name=f"lstm{i + 1}_masked")([x, mask])
    if dropout:
        x = layers.Dropout(dropout, name="dropout")(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="probabilities")(x)
    return keras.Model(inputs, outputs, name="deepdraw_rnn")
