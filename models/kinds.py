"""Every model kind, declared once: adding a kind means its training code plus one entry here.

A kind says which prepared input it reads. ``bitmap`` is the dataset-exact 28x28 rendering
(white ink 0-255 on black, as ``numpy_bitmap``); ``sequence`` is the stroke RNN's
``(dx, dy, end_of_stroke)`` rows (``sketch.sequence``). A composite kind (the ensemble) names the
kinds it combines instead of a network of its own.
"""

from __future__ import annotations

from dataclasses import dataclass

BITMAP = "bitmap"
SEQUENCE = "sequence"


@dataclass(frozen=True)
class Kind:
    name: str
    reads: frozenset[str]  # prepared inputs the kind needs: BITMAP and/or SEQUENCE
    description: str
    members: tuple[str, ...] = ()  # composite kinds: the kinds whose answers they combine

    @property
    def composite(self) -> bool:
        return bool(self.members)


KINDS: dict[str, Kind] = {
    k.name: k
    for k in (
        Kind("cnn", frozenset({BITMAP}), "CNN on the 28x28 bitmap"),
        Kind("rnn", frozenset({SEQUENCE}), "conv1d + bidirectional LSTM on the pen-stroke sequence"),
        Kind(
            "ensemble",
            frozenset({BITMAP, SEQUENCE}),
            "CNN on the rasterised strokes x RNN on the stroke sequence (weighted geometric mean)",
            members=("cnn", "rnn"),
        ),
        Kind(
            "prototypes",
            frozenset({BITMAP}),
            "every category: the CNN's trained classes, prototype classes and taught ones by embedding similarity",
            members=("cnn",),
        ),
    )
}

# Networks first: a composite kind is loaded after the kinds it combines.
LOAD_ORDER: tuple[str, ...] = tuple(sorted(KINDS, key=lambda name: KINDS[name].composite))


def get_kind(name: str) -> Kind:
    try:
        return KINDS[name]
    except KeyError:
        raise ValueError(f"unknown model kind {name!r}; known kinds: {', '.join(KINDS)}") from None
