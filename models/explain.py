"""Why a model made its top guess: what it answers when parts of the drawing are left out.

For strokes, each stroke is left out in turn and the drawing is normalised again, exactly as if the
player had never drawn it, so "without stroke 3 I'd say frog" is what the model answers for that
drawing. For a bitmap, each square patch is blanked in turn (an occlusion map). The drawing and
all its variants go to the model in one batched call, which gives the answer and its explanation;
the counterfactual (the fewest strokes whose removal changes the top guess) needs a second call
(``with_pairs``) only when no single stroke does.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from itertools import combinations

import numpy as np

from models.answer import Answer
from models.inputs import Inputs, variants_without
from models.shared_call import Predict, predict_rows
from sketch.drawing import Drawing
from sketch.raster import SIDE

# A drawing's strokes explained one by one, at most: those with the longest pen path when it has more.
MAX_STROKES = 64
# Pairs for the counterfactual are searched among this many strokes, those whose removal lowers the
# top guess most: 45 pairs, one batched call.
PAIR_CANDIDATES = 10
# Each variant is the drawing normalised and drawn again, at a cost that grows with its points: the
# variants of one explanation (singles, then pairs) hold at most this many points in all. Far above
# any real drawing (the official one with most strokes needs a few percent of it); a drawing made to
# cost seconds per variant has fewer strokes explained and no pairs tried.
MAX_VARIANT_POINTS = 400_000
PATCH = 4  # side in pixels of an occlusion patch of the 28x28 bitmap
GRID = SIDE // PATCH


@dataclass(frozen=True)
class Part:
    """One stroke or patch: how much the top guess's probability falls without it, and the top guess then."""

    index: int
    drop: float
    label_without: str | None  # None: nothing would be left to guess


@dataclass(frozen=True)
class Explanation:
    label: str
    probability: float
    parts: list[Part]  # strokes (by their index in the drawing) or patches (row * GRID + column)
    counterfactual: tuple[list[int], str] | None  # the parts to remove, and the top guess without them
    total: int  # strokes in the drawing, or patches in the grid


def top_guess(answer: Answer) -> tuple[str, float]:
    """The first row's top guess and its probability (the first class of the highest, as ``argmax``)."""
    best = int(answer.probabilities[0].argmax())
    return answer.classes[best], float(answer.probabilities[0, best])


def _top(answer: Answer, label: str) -> tuple[np.ndarray, list[str]]:
    """Each row's probability of ``label`` and each row's top guess."""
    column = answer.classes.index(label)
    return answer.probabilities[:, column], [answer.classes[i] for i in answer.probabilities.argmax(axis=1)]


def _path_length(stroke: np.ndarray) -> float:
    return float(np.hypot(*np.diff(stroke, axis=0).T).sum()) if len(stroke) > 1 else 0.0


def _points(drawing: Drawing) -> int:
    return max(sum(len(stroke) for stroke in drawing), 1)


def explained_strokes(drawing: Drawing) -> list[int]:
    """The strokes an explanation covers, in drawing order: all of them, or the longest ones, as many
    as MAX_STROKES and MAX_VARIANT_POINTS allow."""
    most = min(MAX_STROKES, MAX_VARIANT_POINTS // _points(drawing))
    if len(drawing) <= most:
        return list(range(len(drawing)))
    lengths = [_path_length(stroke) for stroke in drawing]
    longest = sorted(range(len(drawing)), key=lambda i: -lengths[i])[:most]
    return sorted(longest)


def pair_candidates(drawing: Drawing, singles: int) -> int:
    """How many strokes the pairs are searched among: PAIR_CANDIDATES, or fewer when the points
    left for the pairs' variants after the ``singles`` would not hold all their pairs."""
    left = MAX_VARIANT_POINTS // _points(drawing) - singles
    k = PAIR_CANDIDATES
    while k > 1 and k * (k - 1) // 2 > left:
        k -= 1
    return k


def _answers(left: list[bool], answer: Answer | None, label: str) -> list[tuple[float, str | None]]:
    """(probability of ``label``, top guess) for each variant from ``variants_without``, given the
    ``answer`` for the variants that leave a stroke (one row each, in order)."""
    if answer is None:
        return [(0.0, None)] * len(left)
    probability, top = _top(answer, label)
    answers, row = [], 0
    for drawn in left:
        if not drawn:
            answers.append((0.0, None))
        else:
            answers.append((float(probability[row]), top[row]))
            row += 1
    return answers


def _split(answer: Answer, rows: int) -> tuple[Answer, Answer | None]:
    """The answer for the first ``rows`` rows, and for the others (None when there are none)."""
    head = Answer(answer.probabilities[:rows], answer.classes, answer.origins)
    if len(answer.probabilities) == rows:
        return head, None
    return head, Answer(answer.probabilities[rows:], answer.classes, answer.origins)


def explain_strokes(
    predict: Predict, drawing: Drawing, whole: Drawing, reads: frozenset[str], max_len: int
) -> tuple[Answer, Explanation]:
    """The answer for a parsed drawing (``whole``: it normalised) and its explanation:
    ``leave_one_out``, then ``with_pairs`` when no single stroke changes the top guess."""
    answer, found = leave_one_out(predict, drawing, whole, reads, max_len)
    return answer, with_pairs(predict, drawing, whole, found, reads, max_len)


def leave_one_out(
    predict: Predict, drawing: Drawing, whole: Drawing, reads: frozenset[str], max_len: int
) -> tuple[Answer, Explanation]:
    """The answer for a parsed drawing (``whole``: it normalised) and leave-one-out over its strokes
    for its top guess, in one model call: the drawing is the variant that leaves nothing out. The
    counterfactual is the stroke whose removal changes the top guess (of those, the one that lowers
    it most), or None: ``pairs_to_try`` then says whether pairs may give one."""
    indices = explained_strokes(drawing)
    left, variants = variants_without(drawing, [(), *((i,) for i in indices)], reads, max_len, whole)
    answer, without = _split(predict_rows(predict, variants), 1)
    label, probability = top_guess(answer)
    singles = _answers(left[1:], without, label)
    parts = [Part(i, round(probability - p, 4), top) for i, (p, top) in zip(indices, singles, strict=True)]
    flips = [p for p in parts if p.label_without not in (None, label)]
    best = max(flips, key=lambda p: p.drop) if flips else None
    counterfactual = ([best.index], best.label_without) if best else None
    return answer, Explanation(label, probability, parts, counterfactual, len(drawing))


def pairs_to_try(drawing: Drawing, found: Explanation) -> list[tuple[int, ...]]:
    """The pairs of strokes ``with_pairs`` tries: none when a single stroke gave the counterfactual,
    else those among the strokes whose removal lowers the top guess most (and leaves one)."""
    if found.counterfactual is not None:
        return []
    tried = pair_candidates(drawing, len(found.parts))
    candidates = sorted((p for p in found.parts if p.label_without is not None), key=lambda p: -p.drop)[:tried]
    return [tuple(sorted(pair)) for pair in combinations([p.index for p in candidates], 2)]


def with_pairs(
    predict: Predict, drawing: Drawing, whole: Drawing, found: Explanation, reads: frozenset[str], max_len: int
) -> Explanation:
    """``found`` (from ``leave_one_out``) with, when no single stroke gave a counterfactual, the pair
    whose removal changes the top guess and leaves it least likely (None if no pair does, or if the
    guess, a taught category, was deleted in between), in one model call."""
    pairs = pairs_to_try(drawing, found)
    if not pairs:
        return found
    left, variants = variants_without(drawing, pairs, reads, max_len, whole)
    answer = predict_rows(predict, variants)
    if answer is not None and found.label not in answer.classes:
        return found
    answers = _answers(left, answer, found.label)
    flipped = [(p, pair, top) for pair, (p, top) in zip(pairs, answers, strict=True) if top not in (None, found.label)]
    if not flipped:
        return found
    _, pair, top = min(flipped, key=lambda f: f[0])
    return replace(found, counterfactual=(list(pair), top))


def explain_bitmap(predict: Predict, bitmap: np.ndarray) -> tuple[Answer, Explanation]:
    """The answer for a float (28, 28) bitmap and occlusion over it for its top guess: each
    PATCH x PATCH square with ink blanked in turn, in one model call with the bitmap (a patch
    without ink changes nothing, and is not run)."""
    squares = bitmap.reshape(GRID, PATCH, GRID, PATCH).swapaxes(1, 2).reshape(GRID * GRID, -1)
    inked = np.flatnonzero(squares.any(axis=1))  # none when the ink is too faint for float32
    blanked = np.repeat(bitmap[None], len(inked), axis=0)
    for row, k in enumerate(inked):
        r, c = divmod(int(k), GRID)
        blanked[row, r * PATCH : (r + 1) * PATCH, c * PATCH : (c + 1) * PATCH] = 0.0
    left = blanked.reshape(len(blanked), SIDE * SIDE).any(axis=1)  # False: the patch held all the ink
    rows = np.concatenate([bitmap[None], blanked[left]])
    both = predict_rows(predict, [(range(len(rows)), Inputs(bitmaps=rows))])
    answer, without = _split(both, 1)
    label, probability = top_guess(answer)
    answers = dict.fromkeys(inked.tolist(), (0.0, None))
    if without is not None:
        p, top = _top(without, label)
        answers.update(zip(inked[left].tolist(), zip(p.tolist(), top, strict=True), strict=True))
    parts = [
        Part(k, round(probability - answers[k][0], 4), answers[k][1]) if k in answers else Part(k, 0.0, label)
        for k in range(GRID * GRID)
    ]
    flips = [part for part in parts if part.label_without not in (None, label)]
    best = max(flips, key=lambda part: part.drop) if flips else None
    counterfactual = ([best.index], best.label_without) if best else None
    return answer, Explanation(label, probability, parts, counterfactual, GRID * GRID)
