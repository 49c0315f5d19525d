"""One strategy's out-of-sample scorecard: every metric of eqs. (1)-(12), the ruin flag of eq.
(15) and the bootstrap interval of the Sharpe ratio (eq. (16)), for a fold or a chain of folds.

The rules live in :mod:`marketsim.metrics` and :mod:`marketsim.evaluation.bootstrap`; this file
only puts them together, so a walk-forward fold, its chain and a backtest measure alike.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from marketsim.evaluation.bootstrap import sharpe_ci_of_equity
from marketsim.metrics import compute_metrics, ruin

__all__ = ["scorecard", "chain_ruin"]


def scorecard(frame: pd.DataFrame, floor: float, seed: int = 0,
              n_boot: int = 2000) -> dict[str, Any]:
    """Metrics of a per-bar frame (``equity`` and the cost columns of
    :func:`marketsim.evaluation.backtest.simulate`): :func:`marketsim.metrics.compute_metrics`,
    :func:`marketsim.metrics.ruin` against ``floor`` and the Sharpe ratio's stationary-bootstrap
    interval (``sharpe_lo``, ``sharpe_hi``; seeded by ``seed``)."""
    if "equity" not in frame:
        raise ValueError("frame: expected an 'equity' column")
    e = frame["equity"]
    ci = sharpe_ci_of_equity(e, n_boot=n_boot, seed=seed)
    return {**compute_metrics(e, frame), **ruin(e, floor),
            **{k: v for k, v in ci.items() if k != "sharpe"}}


def chain_ruin(folds: list[dict[str, Any]]) -> dict[str, Any]:
    """Ruin of a chain of folds from each fold's :func:`marketsim.metrics.ruin` result, in time
    order: ``ruined`` if any fold was, ``ruined_at`` the first such time, ``ruined_folds`` how
    many were (the chain rescales each fold to the previous one's end, eq. (13), so a fold's
    ruin is the account's)."""
    hit = [f for f in folds if f.get("ruined")]
    return {"ruined": bool(hit), "ruined_at": hit[0]["ruined_at"] if hit else None,
            "ruined_folds": float(len(hit))}
