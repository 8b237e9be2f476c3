"""CNN architectures on 28x28 bitmaps: Deep Draw's default and the original seed model.

Both take the raw 0-255 bitmap (ink 255 on 0) of shape (28, 28, 1): normalisation lives in the
model, so the exported SavedModel is called on exactly what the dataset and the API hold.
"""

from __future__ import annotations

import keras
from keras import layers

INPUT_SHAPE = (28, 28, 1)
# Wide enough to tell all 345 categories apart; the first stage, on the bitmap categories, uses 256.
DENSE = 512


def make_augmenter() -> keras.Sequential:
    """Training-time augmentation, applied in the tf.data pipeline so no random op is exported.

    Mirrored doodles are still the same object (people draw cats facing both ways); small
    shifts and turns mimic a hand that is not perfectly centred.
    """
    return keras.Sequential(
        [
            layers.RandomFlip("horizontal"),
            layers.RandomTranslation(0.04, 0.04, fill_mode="constant"),
            layers.RandomRotation(0.025, fill_mode="constant"),
        ],
        name="augment",
    )


def _conv_bn(x, filters: int):
    x = layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
    x = layers.BatchNormalization()(x)
    return layers.ReLU()(x)


def make_deepdraw(num_classes: int, width: int = 32, dense: int = DENSE) -> keras.Model:
    """VGG-style: pairs of 3x3 conv + batch norm at 14 and 7 px, then a dropout-regularised head.

    Sized to train on all bitmap categories within ~15 minutes on 2 CPU cores. ``dense``: the
    penultimate layer's width (the convolutions' cost dominates, so a wider one is nearly free).
    """
    inputs = keras.Input(INPUT_SHAPE, name="bitmap")
    x = layers.Rescaling(1.0 / 255)(inputs)
    x = _conv_bn(x, width)
    x = layers.MaxPooling2D()(x)
    x = _conv_bn(x, 2 * width)
    x = _conv_bn(x, 2 * width)
    x = layers.MaxPooling2D()(x)
    x = _conv_bn(x, 4 * width)
    x = _conv_bn(x, 4 * width)
    x = layers.MaxPooling2D()(x)
    # Named: training.embedding finds them by name, whatever else this process built before.
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dropout(0.3)(x)
    x = layers.Dense(dense, activation="relu", name="dense")(x)
    x = layers.Dropout(0.3)(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="probabilities")(x)
    return keras.Model(inputs, outputs, name="deepdraw_cnn")


def make_seed(num_classes: int) -> keras.Model:
    """The original Deep Draw student model, unchanged, for the side-by-side comparison."""
    inputs = keras.Input(INPUT_SHAPE, name="bitmap")
    x = layers.Rescaling(1.0 / 255)(inputs)
    x = layers.Conv2D(16, 3, activation="relu")(x)
    x = layers.MaxPooling2D()(x)
    x = layers.Conv2D(32, 3, activation="relu")(x)
    x = layers.MaxPooling2D()(x)
    x = layers.Conv2D(64, 3, activation="relu")(x)
    x = layers.MaxPooling2D()(x)
    x = layers.Flatten()(x)
    x = layers.Dense(128, activation="relu")(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="probabilities")(x)
    return keras.Model(inputs, outputs, name="seed_cnn")
