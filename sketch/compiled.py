"""Compiling the pipeline's point-by-point loops with numba, one way for every module of ``sketch``."""

from __future__ import annotations

from numba import njit


def compiled(fn):  # returns a numba dispatcher
    """``fn`` compiled without the GIL, its machine code cached for the next process; where no cache
    folder is writable (a read-only image without ``NUMBA_CACHE_DIR``), compiled at every start."""
    try:
        return njit(cache=True, nogil=True)(fn)
    except RuntimeError:
        return njit(nogil=True)(fn)
