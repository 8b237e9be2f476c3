"""What a model reads, prepared from a drawing once: the one way from a normalised drawing to model inputs.

``bitmap``: the dataset-exact 28x28 rendering (white ink 0-255 on black, as ``numpy_bitmap``);
``sequence``: the stroke RNN's ``(dx, dy, end_of_stroke)`` rows (``sketch.sequence``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from models.kinds import BITMAP, SEQUENCE
from sketch.drawing import Drawing
from sketch.raster import render_simplified, render_without
from sketch.sequence import MAX_LEN, normalized_to_sequence
from sketch.strokes import normalize_without


@dataclass
class Inputs:
    """A batch of prepared drawings: what each kind reads (``models.kinds``)."""

    bitmaps: np.ndarray | None = None  # float32 (n, 28, 28), 0-255, white ink on black
    sequences: list[np.ndarray] | None = None  # float32 (len_i, 3) rows from sketch.sequence


def bitmap_of(normalized: Drawing) -> np.ndarray:
    """float32 (28, 28): a normalised drawing as a bitmap reader sees it."""
    return render_simplified(normalized).astype(np.float32)


def sequence_of(normalized: Drawing, max_len: int = MAX_LEN) -> np.ndarray:
    """float32 (n, 3): a normalised drawing as a sequence reader sees it."""
    return normalized_to_sequence(normalized, max_len)


def inputs_of(drawings: Sequence[Drawing], reads: frozenset[str], max_len: int = MAX_LEN) -> Inputs:
    """A batch of normalised drawings as a model that reads ``reads`` sees them."""
    return Inputs(
        bitmaps=np.stack([bitmap_of(d) for d in drawings]) if BITMAP in reads else None,
        sequences=[sequence_of(d, max_len) for d in drawings] if SEQUENCE in reads else None,
    )


# From this many strokes, compositing the variants costs less than rendering each (bench/explain).
COMPOSITE_FROM_STROKES = 5


def inputs_without(
    drawing: Drawing, removals: Sequence[Sequence[int]], reads: frozenset[str], max_len: int = MAX_LEN
) -> tuple[list[bool], Inputs | None]:
    """The inputs of a parsed drawing without each removal, as ``inputs_of`` gives them for the
    drawing normalised again without those strokes, to the last bit; and which removals leave a
    stroke (one row each, in order; None: none does).

    The variants that are the whole drawing's normalised strokes less the removed ones (most of
    them: ``normalize_without``) are rendered together (``render_without``) when the drawing has
    enough strokes for that to pay.
    """
    variants = normalize_without(drawing, removals)
    left = variants.left
    rows = [k for k, drawn in enumerate(left) if drawn]
    if not rows:
        return left, None
    composite = len(drawing) >= COMPOSITE_FROM_STROKES
    shared = [k for k in rows if variants.from_whole[k] and composite] if BITMAP in reads else []
    drawings = {k: variants.variant(k) for k in rows if k not in shared or SEQUENCE in reads}
    bitmaps = None
    if BITMAP in reads:
        composited = render_without(variants.whole, [removals[k] for k in shared]) if shared else []
        rendered = dict(zip(shared, composited, strict=True))
        bitmaps = np.stack([rendered[k].astype(np.float32) if k in rendered else bitmap_of(drawings[k]) for k in rows])
    return left, Inputs(
        bitmaps=bitmaps, sequences=[sequence_of(drawings[k], max_len) for k in rows] if SEQUENCE in reads else None
    )


def joined(first: Inputs, rest: Inputs | None) -> Inputs:
    """One batch of ``first``'s rows, then ``rest``'s."""
    if rest is None:
        return first
    return Inputs(
        bitmaps=None if first.bitmaps is None else np.concatenate([first.bitmaps, rest.bitmaps]),
        sequences=None if first.sequences is None else [*first.sequences, *rest.sequences],
    )


def rows_of(inputs: Inputs, start: int, stop: int) -> Inputs:
    """The batch of ``inputs``' rows from ``start`` to ``stop``."""
    return Inputs(
        bitmaps=None if inputs.bitmaps is None else inputs.bitmaps[start:stop],
        sequences=None if inputs.sequences is None else inputs.sequences[start:stop],
    )


def size(inputs: Inputs) -> int:
    """Rows in a batch."""
    return len(inputs.bitmaps) if inputs.bitmaps is not None else len(inputs.sequences or [])
