"""Model selection on a validation slice inside each fold's training window, and the gate that
keeps the account flat when no candidate beats flat there (docs/guide/evaluation.md,
"Validation gate").

Fold k's training window ``[train_start, train_end)`` is cut in two (eq. (17)): candidates train
on the *fit* part ``[train_start, train_end - v)`` only and are backtested, after costs, on the
*validation* part ``[train_end - v, train_end)``. The validated strategy then trades, in the
test window, the candidate with the best validation score when that score beats flat (a
positive return after costs: flat earns exactly 0), and stays flat otherwise (eq. (18)). The test
window, which starts at ``train_end``, plays no part in any of this.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

__all__ = ["ValidationSplit", "split_validation", "validation_slices", "validation_score",
           "gate", "gate_record", "SCORE_KEY"]

SCORE_KEY = "total_return"
"""The validation score the gate ranks by (eq. (18)): the candidate's total return after costs
on the validation slice; flat's is 0."""


@dataclass(frozen=True)
class ValidationSplit:
    """A fold's training window cut into fit and validation parts, half-open, UTC bar opens."""

    fit_start: pd.Timestamp
    fit_end: pd.Timestamp
    val_start: pd.Timestamp
    val_end: pd.Timestamp

    def to_dict(self) -> dict[str, str]:
        """ISO strings."""
        return {k: getattr(self, k).isoformat()
                for k in ("fit_start", "fit_end", "val_start", "val_end")}


def split_validation(train_start: pd.Timestamp, train_end: pd.Timestamp,
                     validation: pd.Timedelta) -> ValidationSplit:
    """Eq. (17): fit ``[train_start, train_end - v)``, validation ``[train_end - v, train_end)``.
    ValueError unless ``0 < v < train_end - train_start`` (the fit part must keep bars)."""
    if validation <= pd.Timedelta(0):
        raise ValueError(f"--validation {validation}: expected a positive duration")
    if validation >= train_end - train_start:
        raise ValueError(f"--validation {validation}: expected shorter than the training window "
                         f"({train_end - train_start}); the fit part would be empty")
    v0 = train_end - validation
    return ValidationSplit(train_start, v0, v0, train_end)


def validation_slices(df: pd.DataFrame, split: ValidationSplit,
                      warmup: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(fit rows, validation rows with the ``warmup`` fit rows before the slice prepended as
    observation history, as :func:`marketsim.evaluation.walkforward.fold_slices` does for the
    test window). Every row returned lies before ``split.val_end``, the test window's start."""
    idx = df.index
    fit = df[(idx >= split.fit_start) & (idx < split.fit_end)]
    mask = (idx >= split.val_start) & (idx < split.val_end)
    first = int(mask.argmax()) if mask.any() else len(df)
    lo = max(first - warmup, int((idx < split.fit_start).sum()))
    return fit, df.iloc[lo:first + int(mask.sum())]


def validation_score(frame: pd.DataFrame) -> dict[str, float]:
    """A candidate's validation figures from its backtest frame (``equity`` and cost columns):
    total return after costs (the gate's score, :data:`SCORE_KEY`), the daily Sharpe ratio, the
    maximum drawdown and the fees, by :func:`marketsim.metrics.compute_metrics`."""
    from marketsim.metrics import compute_metrics

    m = compute_metrics(frame["equity"], frame)
    return {k: float(m[k]) for k in ("total_return", "sharpe", "max_drawdown", "fees")}


def gate(scores: dict[str, dict[str, float]], margin: float = 0.0) -> str | None:
    """Eq. (18): the candidate with the highest validation score if that score exceeds flat's
    (0) by more than ``margin``, else None (stay flat). Ties go to the first name in sorted
    order, so the choice never depends on the order of training."""
    best, best_s = None, None
    for name in sorted(scores):
        s = float(scores[name][SCORE_KEY])
        if s == s and (best_s is None or s > best_s):  # s == s: NaN never wins
            best, best_s = name, s
    return best if best_s is not None and best_s > margin else None


def gate_record(scores: dict[str, dict[str, float]], picked: str | None) -> dict[str, Any]:
    """The gate's part of a fold's validation entry (beside the windows of its
    :class:`ValidationSplit`): every candidate's figures and the pick (``None``: the gate held
    the account flat)."""
    return {"score": SCORE_KEY, "scores": scores, "picked": picked}
