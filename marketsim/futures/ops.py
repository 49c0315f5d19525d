"""Two array namespaces for the one step kernel: numpy arrays (N envs) and Python floats (one).

The kernel in :mod:`marketsim.futures.kernel` is written once against this small interface
(``where``, ``abs``, ``minimum``, ``maximum``, ``sqrt``, ``log``, ``not_``, ``any``,
``bracket``, ``row``), so the batched view and the single view run the same source code. Every operation
gives the same bits in both: ``+ - * /`` and ``sqrt`` are correctly rounded, and ``log``, which
is not, is numpy's in both (libm's ``math.log`` differs from numpy's SIMD ``log`` by an ulp on
CPUs with AVX-512). ``tests/futures/test_batched_equals_single.py`` checks this end to end.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from typing import Any

import numpy as np

_np_log = np.log


class NumpyOps:
    """Elementwise operations on float64 numpy arrays of shape (N,)."""

    where = staticmethod(np.where)
    abs = staticmethod(np.abs)
    minimum = staticmethod(np.minimum)
    maximum = staticmethod(np.maximum)
    sqrt = staticmethod(np.sqrt)
    log = staticmethod(np.log)
    not_ = staticmethod(np.logical_not)
    any = staticmethod(np.ndarray.any)

    @staticmethod
    def row(m: Any, t: np.ndarray) -> np.ndarray:
        """Kernel inputs at bars ``t``: (6, N) rows close, high, low, sigma, vbar, funding."""
        return np.take(m.bars_t, t, axis=1)

    @staticmethod
    def bracket(floors: np.ndarray, notional: np.ndarray) -> np.ndarray:
        """Index of the bracket whose floor is the largest one <= notional."""
        return np.searchsorted(floors, notional, side="right") - 1


def _where(cond: Any, a: Any, b: Any) -> Any:
    return a if cond else b


def _minimum(a: float, b: float) -> float:
    return a if a <= b else b


def _maximum(a: float, b: float) -> float:
    return a if a >= b else b


def _not(a: bool) -> bool:
    return not a


def _log(x: float) -> float:
    """numpy's log of one float: the same bits as NumpyOps.log on an array (math.log may differ)."""
    return float(_np_log(x))


def _row(m: Any, t: int) -> tuple[float, ...]:
    return m.rows[t]


def _bracket(floors: list[float], notional: float) -> int:
    return bisect_right(floors, notional) - 1


# --8<-- [start:scalar-ops]
class ScalarOps:
    """The same operations on Python floats and bools (no numpy call per step)."""

    where = staticmethod(_where)
    abs = staticmethod(abs)
    minimum = staticmethod(_minimum)
    maximum = staticmethod(_maximum)
    sqrt = staticmethod(math.sqrt)
    log = staticmethod(_log)
    not_ = staticmethod(_not)
    any = staticmethod(bool)
    bracket = staticmethod(_bracket)
    row = staticmethod(_row)
# --8<-- [end:scalar-ops]
