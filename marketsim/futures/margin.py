"""Isolated margin: maintenance-margin brackets, liquidation price, risk-based position size.

Every formula here is in ``docs/marketsim/futures.md`` (section "Margin and liquidation").
The functions use only arithmetic and the ``ops`` namespace of :mod:`marketsim.futures.ops`,
so the same code runs on numpy arrays (N environments) and on Python floats (one).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

# Illustrative Binance USDT-M BTCUSDT leverage brackets: (notional floor in USDT, maintenance
# margin rate, maximum leverage). Exchanges change these tables; pass your own to the env.
BINANCE_BTCUSDT_BRACKETS: tuple[tuple[float, float, float], ...] = (
    (0.0, 0.004, 125.0),
    (50_000.0, 0.005, 100.0),
    (250_000.0, 0.01, 50.0),
    (3_000_000.0, 0.025, 20.0),
    (15_000_000.0, 0.05, 10.0),
    (30_000_000.0, 0.10, 5.0),
    (80_000_000.0, 0.125, 4.0),
    (100_000_000.0, 0.15, 3.0),
    (200_000_000.0, 0.25, 2.0),
    (300_000_000.0, 0.50, 1.0),
)


@dataclass(frozen=True)
class Brackets:
    """Maintenance-margin brackets with their maintenance amounts ``cum``.

    ``cum`` is derived so that the maintenance margin ``notional * mmr - cum`` is continuous
    across bracket floors (docs/marketsim/futures.md, eq. (6)).
    """

    floors: tuple[float, ...]
    """Lowest position notional (quote currency) of each bracket, ascending, first is 0."""
    mmr: tuple[float, ...]
    """Maintenance margin rate of each bracket."""
    max_leverage: tuple[float, ...]
    """Largest leverage the exchange allows in each bracket."""
    cum: tuple[float, ...]
    """Maintenance amount of each bracket (derived)."""

    @classmethod
    def from_table(cls, table: Sequence[Sequence[float]]) -> Brackets:
        """Build from rows ``(notional_floor, mmr, max_leverage)``; validates the table."""
        rows = [tuple(float(v) for v in row) for row in table]
        if not rows:
            raise ValueError("brackets: expected at least one row (floor, mmr, max_leverage)")
        for i, row in enumerate(rows):
            if len(row) != 3:
                raise ValueError(
                    f"brackets row {i}: expected (floor, mmr, max_leverage), got {row}"
                )
            floor, mmr, lev = row
            if not (0.0 <= mmr < 1.0) or lev <= 0.0 or floor < 0.0:
                raise ValueError(f"brackets row {i}: need floor>=0, 0<=mmr<1, lev>0, got {row}")
        if rows[0][0] != 0.0:
            raise ValueError(f"brackets: first floor must be 0, got {rows[0][0]}")
        floors = [r[0] for r in rows]
        if any(b <= a for a, b in zip(floors, floors[1:])):
            raise ValueError(f"brackets: floors must be strictly ascending, got {floors}")
        cum = [0.0]
        for i in range(1, len(rows)):
            # --8<-- [start:maintenance-amount]
            # docs/marketsim/futures.md, eq. (6): cum_i = cum_{i-1} + floor_i (mmr_i - mmr_{i-1})
            cum.append(cum[-1] + rows[i][0] * (rows[i][1] - rows[i - 1][1]))
            # --8<-- [end:maintenance-amount]
        return cls(
            floors=tuple(floors),
            mmr=tuple(r[1] for r in rows),
            max_leverage=tuple(r[2] for r in rows),
            cum=tuple(cum),
        )


# --8<-- [start:liquidation-price]
def liquidation_price(ops: Any, qty: Any, entry: Any, wallet: Any, mmr: Any, cum: Any) -> Any:
    """Isolated-margin liquidation price of a one-way position (0 where flat).

    ``qty`` is signed (long > 0). Long: ``(Q EP - WB - cum) / (Q (1 - MMR))``; short:
    ``(|Q| EP + WB + cum) / (|Q| (1 + MMR))`` (docs/marketsim/futures.md, eqs. (4), (5)), both
    computed as ``(q EP - WB - cum) / (q - |q| MMR)`` with signed q (eq. (4')).
    A long with a non-positive result cannot be liquidated.
    """
    den = qty - ops.abs(qty) * mmr
    flat = qty == 0.0
    lp = (qty * entry - (wallet + cum)) / ops.where(flat, 1.0, den)
    return ops.where(flat, 0.0, lp)
# --8<-- [end:liquidation-price]


def risk_notional(ops: Any, risk: Any, stop: float, is_long: Any, brackets: Brackets) -> Any:
    """Notional whose isolated liquidation price lies ``stop`` (a price fraction) from entry.

    With isolated margin ``WB = risk`` the liquidation price is the stop when
    ``notional = (risk + cum) / (1 - (1 - d)(1 - MMR))`` for a long and
    ``(risk + cum) / ((1 + d)(1 + MMR) - 1)`` for a short (docs/marketsim/futures.md, eq. (9)).
    The bracket is the one that contains its own solution (the first such, scanning upward).
    For a short the required risk jumps up by ``d * floor * (MMR_i - MMR_{i-1})`` at a floor,
    so a risk inside that jump has no solution: the notional is then the floor itself (the
    stop sits that jump's fraction of a percent nearer).
    """
    result = risk * 0.0
    at_floor = risk * 0.0  # the floor above the last bracket whose solution lies above it
    found = risk * 0.0 > 1.0  # all False, right shape
    n = len(brackets.floors)
    for i in range(n):
        mmr, cum = brackets.mmr[i], brackets.cum[i]
        den_long = 1.0 - (1.0 - stop) * (1.0 - mmr)
        den_short = (1.0 + stop) * (1.0 + mmr) - 1.0
        cand = (risk + cum) / ops.where(is_long, den_long, den_short)
        hi = brackets.floors[i + 1] if i + 1 < n else float("inf")
        ok = (cand >= brackets.floors[i]) & (cand < hi) & ops.not_(found)
        result = ops.where(ok, cand, result)
        at_floor = ops.where((cand >= hi) & ops.not_(found), hi, at_floor)
        found = found | ok
    return ops.where(found, result, at_floor)
