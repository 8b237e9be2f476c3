"""A drawing as every stage of the pipeline holds it: all points in one array, and each stroke's count.

Parsing makes one from the request's JSON, and normalising, rendering and sequence encoding all take
and give this same value, so the drawing changes form once, at the edge. It reads as the sequence of
its strokes (``len``, indexing and iteration give each stroke's ``(n, 2)`` points, as views).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, eq=False)
class Drawing:
    points: np.ndarray  # float64 (n, 2), the strokes one after another
    counts: np.ndarray  # int64 (strokes,), each >= 1

    def __post_init__(self) -> None:
        object.__setattr__(self, "points", np.asarray(self.points, dtype=np.float64).reshape(-1, 2))
        object.__setattr__(self, "counts", np.asarray(self.counts, dtype=np.int64).reshape(-1))
        if int(self.counts.sum()) != len(self.points) or (self.counts < 1).any():
            raise ValueError(f"stroke counts {self.counts.tolist()} do not split {len(self.points)} points")

    @classmethod
    def from_strokes(cls, strokes: Iterable) -> Drawing:
        """Strokes given one array (or list) of ``(x, y)`` points each; strokes without a point are left out."""
        arrays = [a for a in (np.asarray(s, dtype=np.float64).reshape(-1, 2) for s in strokes) if len(a)]
        if not arrays:
            return cls(np.zeros((0, 2)), np.zeros(0, np.int64))
        return cls(np.concatenate(arrays), np.array([len(a) for a in arrays]))

    @property
    def starts(self) -> np.ndarray:
        """The index in ``points`` of each stroke's first point."""
        return np.cumsum(self.counts) - self.counts

    def __len__(self) -> int:
        return len(self.counts)

    def __getitem__(self, index: int) -> np.ndarray:
        start = int(self.starts[index])
        return self.points[start : start + int(self.counts[index])]

    def __iter__(self) -> Iterator[np.ndarray]:
        return iter(self.split(self.points))

    def split(self, values: np.ndarray) -> list[np.ndarray]:
        """Rows aligned with ``points`` (the points themselves, or rounded, or scaled), cut per stroke."""
        return np.split(values, np.cumsum(self.counts)[:-1]) if len(self.counts) else []

    def without(self, removed: Collection[int]) -> Drawing:
        """The same drawing with the strokes at ``removed`` left out."""
        (keep,) = kept_strokes(len(self.counts), [removed])
        return Drawing(self.points[np.repeat(keep, self.counts)], self.counts[keep])


def kept_strokes(strokes: int, removals: Sequence[Collection[int]]) -> np.ndarray:
    """bool (len(removals), strokes): which strokes each removal keeps."""
    keeps = np.ones((len(removals), strokes), dtype=bool)
    rows = np.repeat(np.arange(len(removals)), [len(r) for r in removals])
    keeps[rows, np.fromiter((i for r in removals for i in r), np.intp, len(rows))] = False
    return keeps
