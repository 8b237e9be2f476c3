"""What a model reads, prepared from a drawing once: the one way from a normalised drawing to model inputs.

``bitmap``: the dataset-exact 28x28 rendering (white ink 0-255 on black, as ``numpy_bitmap``);
``sequence``: the stroke RNN's ``(dx, dy, end_of_stroke)`` rows (``sketch.sequence``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from models.kinds import BITMAP, SEQUENCE
from sketch.drawing import Drawing
from sketch.raster import composited_without, render_simplified
from sketch.sequence import MAX_LEN, normalized_to_sequence
from sketch.strokes import Without, normalize_without


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


def variants_without(
    drawing: Drawing,
    removals: Sequence[Sequence[int]],
    reads: frozenset[str],
    max_len: int = MAX_LEN,
    whole: Drawing | None = None,
) -> tuple[list[bool], Iterator[tuple[list[int], Inputs]]]:
    """The inputs of a parsed drawing without each removal, as ``inputs_of`` gives them for the
    drawing normalised again without those strokes, to the last bit: which removals leave a stroke,
    and the inputs of those, each row's position among them given with it, made as they are drawn.

    The variants that are the whole drawing's normalised strokes less the removed ones (most of
    them: ``normalize_without``) come first, rendered together (``composited_without``) when the
    drawing has enough strokes for that to pay; then the others, one at a time. ``whole``: the
    drawing normalised, when it already is.
    """
    variants = normalize_without(drawing, removals, whole)
    return variants.left, _variant_rows(variants, reads, max_len)


def _variant_rows(variants: Without, reads: frozenset[str], max_len: int) -> Iterator[tuple[list[int], Inputs]]:
    rows = [k for k, drawn in enumerate(variants.left) if drawn]  # the removal of each position
    composited: dict[int, np.ndarray] = {}
    if BITMAP in reads and len(variants.drawing) >= COMPOSITE_FROM_STROKES:
        whole = [k for k in rows if variants.from_whole[k]]
        found = composited_without(variants.whole, [variants.removals[k] for k in whole]) if whole else {}
        composited = {whole[j]: bitmap for j, bitmap in found.items()}
    together = [p for p, k in enumerate(rows) if k in composited]
    if together:
        yield (
            together,
            Inputs(
                bitmaps=np.stack([composited[rows[p]] for p in together]).astype(np.float32),
                sequences=[sequence_of(variants.variant(rows[p]), max_len) for p in together]
                if SEQUENCE in reads
                else None,
            ),
        )
    for p, k in enumerate(rows):
        if k not in composited:
            yield [p], inputs_of([variants.variant(k)], reads, max_len)


def inputs_without(
    drawing: Drawing, removals: Sequence[Sequence[int]], reads: frozenset[str], max_len: int = MAX_LEN
) -> tuple[list[bool], Inputs | None]:
    """``variants_without`` in one batch, its rows in order (None: no removal leaves a stroke)."""
    left, batches = variants_without(drawing, removals, reads, max_len)
    made = list(batches)
    if not made:
        return left, None
    order = np.argsort(np.concatenate([positions for positions, _ in made]), kind="stable")
    inputs = joined([batch for _, batch in made])
    return left, Inputs(
        bitmaps=None if inputs.bitmaps is None else inputs.bitmaps[order],
        sequences=None if inputs.sequences is None else [inputs.sequences[i] for i in order],
    )


def joined(parts: Sequence[Inputs]) -> Inputs:
    """One batch of the parts' rows, in order."""
    if len(parts) == 1:
        return parts[0]
    first = parts[0]
    return Inputs(
        bitmaps=None if first.bitmaps is None else np.concatenate([p.bitmaps for p in parts]),
        sequences=None if first.sequences is None else [s for p in parts for s in p.sequences],
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
