"""The A/B rule: when is a challenger worse than the champion, and when has it held up?

Pure: equity in, a :class:`Verdict` out (docs/guide/deployment.md, eq. (5)). Each bar, the
returns per unit of capital of both books (eq. (1)) over the last ``window`` bars give a Sharpe
ratio each (eq. (2)); the champion's, degraded by ``threshold``, is the benchmark SR* that the
challenger's probabilistic Sharpe ratio (eq. (4)) is computed against, with the benchmark's own
standard error (eq. (3)) added: both Sharpe ratios are estimates. The challenger is rolled
back when PSR(SR*) < ``alpha`` (we are 1 - alpha sure its true risk-adjusted return is below
the benchmark) once ``min_bars`` bars are in the window, or at once when its drawdown reaches
``max_drawdown``. A challenger that ran ``promote_after`` bars and sits at or above the
benchmark is proposed for promotion.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from marketsim.deploy.stats import (
    drawdown,
    probabilistic_sharpe,
    sharpe,
    sharpe_std_error,
    unit_returns,
)

__all__ = ["ABRule", "Verdict", "ABMonitor", "judge"]


@dataclass(frozen=True)
class ABRule:
    """Settings of the A/B comparison; bars are the feed's bars."""

    share: float = 0.10
    """Fraction of the capital the challenger trades (the champion trades the rest)."""
    window: int = 240
    """Bars of returns each comparison looks at (the rolling window)."""
    min_bars: int = 60
    """No statistical rollback before this many returns are in the window."""
    threshold: float = 0.20
    """The challenger is 'worse' below SR* = SR_champion - threshold * |SR_champion|."""
    alpha: float = 0.001
    """Roll back when PSR(SR*) < alpha: the drop is real with probability 1 - alpha."""
    max_drawdown: float = 0.15
    """Hard cap: the challenger's drawdown from its peak (fraction) that rolls it back at once."""
    promote_after: int = 1440
    """Bars after which a challenger at or above SR* is proposed for promotion."""
    auto_promote: bool = False
    """Promote a proposed challenger to champion without a human (off by default)."""

    def __post_init__(self) -> None:
        """ValueError naming the field for a bad value."""
        for name in ("share", "threshold", "alpha", "max_drawdown"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v < 1:
                raise ValueError(f"{name}: expected a fraction in (0, 1), got {v!r}")
        for name in ("window", "min_bars", "promote_after"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 3:
                raise ValueError(f"{name}: expected an integer >= 3, got {v!r}")
        if self.min_bars > self.window:
            raise ValueError(f"min_bars: expected <= window ({self.window}), got {self.min_bars}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return asdict(self)


@dataclass(frozen=True)
class Verdict:
    """One comparison: what to do and the numbers behind it."""

    action: str
    """``warmup``, ``hold``, ``rollback`` or ``propose``."""
    bars: int
    """Bars both books have been marked at."""
    n: int
    """Returns in the window."""
    sr_champion: float
    sr_challenger: float
    benchmark: float
    """SR* = SR_champion - threshold * |SR_champion|."""
    psr: float
    """PSR of the challenger's returns against SR* (eq. (4))."""
    drawdown: float
    """The challenger's drawdown from its peak."""
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (NaN never: the numbers are finite)."""
        return asdict(self)


# --8<-- [start:judge]
def judge(eq_champion: np.ndarray, eq_challenger: np.ndarray, rule: ABRule,
          bars: int | None = None, peak: float | None = None, proposed: bool = False) -> Verdict:
    """Eq. (5): the verdict on two equity series marked at the same bars (``bars`` marks in
    all, of which these are the last; ``peak``: the challenger's highest equity so far)."""
    bars = len(eq_challenger) if bars is None else bars
    dd = drawdown(eq_challenger) if peak is None else \
        max(0.0, 1.0 - float(eq_challenger[-1]) / peak) if peak > 0 else 0.0
    tail = rule.window + 1
    r_b = unit_returns(eq_champion[-tail:])
    r_c = unit_returns(eq_challenger[-tail:])
    n = r_c.size
    sr_b, sr_c = sharpe(r_b), sharpe(r_c)
    k = 1.0 - rule.threshold * (1.0 if sr_b >= 0 else -1.0)
    bench = k * sr_b  # = sr_b - threshold * |sr_b|
    se_bench = abs(k) * sharpe_std_error(r_b, sr_b) if r_b.size >= 2 else 0.0
    psr = probabilistic_sharpe(r_c, bench, se_bench) if n >= 2 else 0.5
    numbers = dict(bars=bars, n=n, sr_champion=sr_b, sr_challenger=sr_c, benchmark=bench,
                   psr=psr, drawdown=dd)
    if dd >= rule.max_drawdown:
        return Verdict("rollback", **numbers, reason=f"drawdown {dd:.2%} >= max_drawdown "
                                                       f"{rule.max_drawdown:.2%}")
    if n < rule.min_bars:
        return Verdict("warmup", **numbers)
    if psr < rule.alpha:
        return Verdict("rollback", **numbers, reason=(
            f"PSR {psr:.4f} < alpha {rule.alpha}: Sharpe {sr_c:.4f} per bar against the "
            f"benchmark {bench:.4f} (champion {sr_b:.4f} less {rule.threshold:.0%}) over "
            f"{n} bars"))
    if not proposed and bars > rule.promote_after and sr_c >= bench:
        return Verdict("propose", **numbers, reason=(
            f"held up for {bars - 1} bars: Sharpe {sr_c:.4f} >= benchmark {bench:.4f}"))
    return Verdict("hold", **numbers)
# --8<-- [end:judge]


class ABMonitor:
    """Keeps the last ``window + 1`` equities of both books and the challenger's peak, and
    judges them after every bar."""

    def __init__(self, rule: ABRule | None = None) -> None:
        self.rule = rule or ABRule()
        self.champion: deque[float] = deque(maxlen=self.rule.window + 1)
        self.challenger: deque[float] = deque(maxlen=self.rule.window + 1)
        self.bars = 0
        self.peak = -math.inf
        self.proposed = False
        self.last: Verdict | None = None

    def update(self, eq_champion: float, eq_challenger: float) -> Verdict:
        """Add one bar's equities (any scale: returns are per unit of capital) and judge."""
        for v in (eq_champion, eq_challenger):
            if not math.isfinite(v):
                raise ValueError(f"equity: expected a finite number, got {v!r}")
        self.champion.append(float(eq_champion))
        self.challenger.append(float(eq_challenger))
        self.bars += 1
        self.peak = max(self.peak, float(eq_challenger))
        v = judge(np.asarray(self.champion), np.asarray(self.challenger), self.rule,
                  self.bars, self.peak, self.proposed)
        if v.action == "propose":
            self.proposed = True
        self.last = v
        return v
