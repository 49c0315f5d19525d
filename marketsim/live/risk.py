"""Risk limits of the trader: position and leverage caps, reduce-only mode, and a kill switch.

The caps act on the target position the environment's rule gives (they only ever move it
towards flat, so an order they shrink still fits the margin). The kill switch watches equity at
every bar: a loss since the start of the UTC day, or a drawdown from the peak, beyond its limit
makes the trader cancel every open order, flatten the position with a reduce-only market order,
and halt (journaled; a restart stays halted until the halt is cleared).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["RiskLimits", "RiskGuard"]

_DAY_S = 86_400


@dataclass(frozen=True)
class RiskLimits:
    """Limits checked before every order and at every bar; None turns a limit off."""

    max_position: float | None = None
    """Largest absolute position, in units of the base asset."""
    max_leverage: float | None = None
    """Largest position notional as a multiple of equity (on top of the run's max_leverage)."""
    max_daily_loss: float | None = None
    """Kill switch: loss since the UTC day's first bar, as a fraction of that bar's equity."""
    max_drawdown: float | None = None
    """Kill switch: drawdown from the peak equity of the session, as a fraction of the peak."""
    reduce_only: bool = False
    """Only orders that move the position towards flat (no new exposure)."""

    def __post_init__(self) -> None:
        """ValueError naming the field when a limit is not a positive number (or a fraction)."""
        for name in ("max_position", "max_leverage", "max_daily_loss", "max_drawdown"):
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)) \
                    or not math.isfinite(value) or value <= 0:
                raise ValueError(f"{name}: expected a finite number > 0, got {value!r}")
            if name in ("max_daily_loss", "max_drawdown") and value >= 1:
                raise ValueError(f"{name}: expected a fraction in (0, 1), got {value!r}")
            object.__setattr__(self, name, float(value))
        if not isinstance(self.reduce_only, bool):
            raise ValueError(f"reduce_only: expected true or false, got {self.reduce_only!r}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return asdict(self)


class RiskGuard:
    """Applies :class:`RiskLimits`: clamps targets, and tells when the kill switch fires."""

    def __init__(self, limits: RiskLimits, state: dict[str, Any] | None = None) -> None:
        self.limits = limits
        state = state or {}
        self.day: int | None = state.get("day")
        self.day_start: float | None = state.get("day_start")
        self.peak: float | None = state.get("peak")

    def state_dict(self) -> dict[str, Any]:
        """Day, the day's starting equity and the peak (journaled with every decision)."""
        return {"day": self.day, "day_start": self.day_start, "peak": self.peak}

    # --8<-- [start:kill-switch]
    def breach(self, equity: float, now: float) -> str | None:
        """The kill switch's reason if equity at time ``now`` (s) is past a limit, else None."""
        day = int(now // _DAY_S)
        if self.day != day:
            self.day, self.day_start = day, equity
        self.peak = equity if self.peak is None else max(self.peak, equity)
        lim = self.limits
        if lim.max_daily_loss is not None and self.day_start and self.day_start > 0:
            loss = 1.0 - equity / self.day_start
            if loss >= lim.max_daily_loss:
                return (f"daily loss {loss:.2%} >= max_daily_loss {lim.max_daily_loss:.2%} "
                        f"(equity {equity:.2f}, day start {self.day_start:.2f})")
        if lim.max_drawdown is not None and self.peak and self.peak > 0:
            dd = 1.0 - equity / self.peak
            if dd >= lim.max_drawdown:
                return (f"drawdown {dd:.2%} >= max_drawdown {lim.max_drawdown:.2%} "
                        f"(equity {equity:.2f}, peak {self.peak:.2f})")
        return None
    # --8<-- [end:kill-switch]

    def clamp(self, current: float, target: float, price: float, equity: float) -> tuple[float, str]:
        """The target within the caps and reduce-only mode, and a note of what changed ('')."""
        lim = self.limits
        out = target
        notes = []
        if lim.max_position is not None and abs(out) > lim.max_position:
            out = math.copysign(lim.max_position, out)
            notes.append(f"max_position {lim.max_position:g}")
        if lim.max_leverage is not None and price > 0:
            cap = lim.max_leverage * max(equity, 0.0) / price
            if abs(out) > cap:
                out = math.copysign(cap, out)
                notes.append(f"max_leverage {lim.max_leverage:g}")
        if lim.reduce_only:
            if current == 0.0 or out * current < 0:
                reduced = 0.0
            else:
                reduced = out if abs(out) < abs(current) else current
            if reduced != out:
                out = reduced
                notes.append("reduce_only")
        return out, ", ".join(notes)
