"""The last bars of a live or replayed feed, seen exactly as the futures environment sees them.

:class:`BarWindow` keeps the trailing ``window + vol_window + 1`` closed bars and builds the
environment's own per-bar arrays from them with :meth:`marketsim.futures.market.Market.build`:
the observation row (feature window and time features), and the kernel's inputs of the newest
bar (close, high, low, realised volatility, mean volume, funding since the previous close).
Every feature at bar t reads bars <= t only (``tests/futures/test_no_lookahead.py``), so a
trailing window that long gives the newest bar the same numbers as the whole history does; the
trader and the paper broker read them here, never computing a feature of their own.
"""

from __future__ import annotations

from collections import deque

import numpy as np
import pandas as pd

from marketsim.futures.config import FuturesConfig
from marketsim.futures.market import COLUMNS, Market
from marketsim.live.orders import Bar

__all__ = ["BarWindow", "bars_from_frame"]


def bars_from_frame(df: pd.DataFrame) -> list[Bar]:
    """Candles (UTC DatetimeIndex of open times; open, high, low, close, volume) as bars."""
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"candles: missing column(s) {missing}; expected {list(COLUMNS)}")
    ms = df.index.as_unit("ns").asi8 // 1_000_000
    vals = df[list(COLUMNS)].to_numpy(np.float64)
    return [Bar(int(t), *map(float, row)) for t, row in zip(ms, vals)]


class BarWindow:
    """Trailing closed bars and the environment's arrays over them.

    Args:
        cfg: the futures configuration (window, vol_window, funding) of the run being traded.
        bar_ms: the bar length in milliseconds; bars must arrive on this grid, gap-free (a
            feed fills gaps with :class:`marketsim.data.sources.StreamCleaner`).

    ``push`` a bar once it has closed. The same bar pushed twice is a no-op, so a trader and a
    paper broker can share one window.
    """

    def __init__(self, cfg: FuturesConfig, bar_ms: int) -> None:
        if isinstance(bar_ms, bool) or not isinstance(bar_ms, int) or bar_ms <= 0:
            raise ValueError(f"bar_ms: expected a positive integer (milliseconds), got {bar_ms!r}")
        self.cfg = cfg
        self.bar_ms = bar_ms
        self.need = cfg.window + cfg.vol_window + 1
        """Bars needed before the newest one has its full feature history."""
        self._bars: deque[Bar] = deque(maxlen=self.need)
        self._market: Market | None = None

    @property
    def warm(self) -> bool:
        """Enough bars for the newest one's observation and costs."""
        return len(self._bars) >= self.need

    @property
    def last(self) -> Bar | None:
        """The newest bar (None before the first)."""
        return self._bars[-1] if self._bars else None

    def reset(self) -> None:
        """Forget every bar (after a gap the feed could not fill)."""
        self._bars.clear()
        self._market = None

    def push(self, bar: Bar) -> bool:
        """Add a closed bar; False if it is the newest bar already. ValueError if it is older
        or leaves a gap (the message names both open times)."""
        last = self.last
        if last is not None:
            if bar.open_ms == last.open_ms:
                return False
            if bar.open_ms != last.open_ms + self.bar_ms:
                raise ValueError(f"bar at {bar.open_ms} ms does not follow the bar at "
                                 f"{last.open_ms} ms on the {self.bar_ms} ms grid (a gap or an "
                                 "older bar; fill gaps before the window)")
        self._bars.append(bar)
        self._market = None
        return True

    def market(self) -> Market:
        """The environment's arrays over the window (built once per new bar).

        ``Market.build`` wants one bar after the newest (the environment steps into it); a copy
        of the newest bar one period later stands in for it. Nothing at the newest bar reads it.
        """
        if not self.warm:
            raise ValueError(f"bar window: {len(self._bars)} bars, need {self.need} "
                             "(window + vol_window + 1) before the first decision")
        if self._market is None:
            rows = list(self._bars)
            rows.append(rows[-1]._replace(open_ms=rows[-1].open_ms + self.bar_ms))
            arr = np.asarray(rows, dtype=np.float64)
            idx = pd.DatetimeIndex(arr[:, 0].astype(np.int64) * 1_000_000, tz="UTC")
            df = pd.DataFrame(arr[:, 1:], index=idx, columns=list(COLUMNS))
            self._market = Market.build(df, self.cfg)
        return self._market

    def row(self) -> tuple[float, ...]:
        """The kernel's inputs at the newest bar: close, high, low, sigma, mean volume, and the
        funding rates of the events since the previous bar's close (docs: eqs. (3), (15), (17))."""
        return tuple(float(x) for x in self.market().bars_t[:, -2])

    def static_observation(self) -> np.ndarray:
        """The newest bar's observation row without the account features (float32, a copy)."""
        return self.market().static_obs[-2].copy()
