"""Order-book replay data: rebuild a Binance L2 book from a websocket capture and cut it into bars.

Input lines are ``<receive time ns> <json>`` with ``depthUpdate`` diffs, ``trade`` messages and
one REST snapshot (``{"lastUpdateId": .., "bids": .., "asks": ..}``). Diffs whose final update id
``u`` is at most the snapshot's ``lastUpdateId`` are already in the snapshot and are dropped; the
rest are applied in order (a size of 0 removes a level). Bars of ``interval_s`` seconds hold the
book at the bar's end and the extreme trade prices inside it, so the market-making replay can
fill a bid when a trade in the next bar printed below it (docs/marketsim/market-making.md,
section "Book mode").
"""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True, eq=False)
class BookBars:
    """Per-bar arrays: ``time_ns`` (bar end), ``mid``, trade ``high``/``low`` (``-inf``/``inf``
    when the bar had no trade), and the top ``levels`` of the book: ``bid_px``, ``bid_sz``,
    ``ask_px``, ``ask_sz`` with shape ``(bars, levels)``."""

    time_ns: np.ndarray
    mid: np.ndarray
    high: np.ndarray
    low: np.ndarray
    bid_px: np.ndarray
    bid_sz: np.ndarray
    ask_px: np.ndarray
    ask_sz: np.ndarray


def _lines(paths: list[Path]):
    """Yield ``(time_ns, message)`` from gzip capture files in order."""
    for path in paths:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rt") as handle:
            for number, line in enumerate(handle, start=1):
                stamp, _, payload = line.partition(" ")
                try:
                    yield int(stamp), json.loads(payload)
                except (ValueError, json.JSONDecodeError) as err:
                    raise ValueError(f"{path}:{number}: not '<ns> <json>' ({err})") from None


def _top(side: dict[float, float], levels: int, reverse: bool) -> tuple[list, list]:
    """Best ``levels`` prices and sizes of one side (padded with NaN price and 0 size)."""
    prices = sorted(side, reverse=reverse)[:levels]
    sizes = [side[p] for p in prices]
    pad = levels - len(prices)
    return prices + [np.nan] * pad, sizes + [0.0] * pad


def load_l2_bars(paths: list[str | Path] | str | Path, interval_s: float = 1.0,
                 levels: int = 5) -> BookBars:
    """Rebuild the book from capture files (in time order) and return one row per bar."""
    if isinstance(paths, (str, Path)):
        paths = [paths]
    files = [Path(p) for p in paths]
    for f in files:
        if not f.exists():
            raise FileNotFoundError(f"L2 capture file not found: {f}")
    if not interval_s > 0 or levels < 1:
        raise ValueError(f"need interval_s > 0 and levels >= 1, got {interval_s}, {levels}")
    step = int(round(interval_s * 1e9))
    bids: dict[float, float] = {}
    asks: dict[float, float] = {}
    last_id: int | None = None
    pending: list[tuple[int, dict]] = []
    rows: list[tuple] = []
    boundary: int | None = None
    hi, lo = -np.inf, np.inf

    def apply(diff: dict) -> None:
        for side, key in ((bids, "b"), (asks, "a")):
            for price, size in diff[key]:
                p, s = float(price), float(size)
                if s == 0.0:
                    side.pop(p, None)
                else:
                    side[p] = s

    for t, msg in _lines(files):
        if "lastUpdateId" in msg:
            last_id = msg["lastUpdateId"]
            bids = {float(p): float(s) for p, s in msg["bids"] if float(s) > 0}
            asks = {float(p): float(s) for p, s in msg["asks"] if float(s) > 0}
            for _, diff in pending:
                if diff["u"] > last_id:
                    apply(diff)
            pending = []
            boundary = (t // step + 1) * step
            continue
        data = msg.get("data", msg)
        event = data.get("e")
        if last_id is None:
            if event == "depthUpdate":
                pending.append((t, data))
            continue
        while t >= boundary:  # close every bar that ended before this message
            bp, bs = _top(bids, levels, reverse=True)
            ap, az = _top(asks, levels, reverse=False)
            rows.append((boundary, hi, lo, bp, bs, ap, az))
            hi, lo = -np.inf, np.inf
            boundary += step
        if event == "depthUpdate":
            if data["u"] > last_id:
                apply(data)
        elif event == "trade":
            price = float(data["p"])
            hi, lo = max(hi, price), min(lo, price)
    if last_id is None:
        raise ValueError(f"no REST depth snapshot (lastUpdateId) in {[str(f) for f in files]}")
    if not rows:
        raise ValueError("capture shorter than one bar")
    time_ns = np.array([r[0] for r in rows], dtype=np.int64)
    bid_px, bid_sz = np.array([r[3] for r in rows]), np.array([r[4] for r in rows])
    ask_px, ask_sz = np.array([r[5] for r in rows]), np.array([r[6] for r in rows])
    mid = 0.5 * (bid_px[:, 0] + ask_px[:, 0])
    bad = np.flatnonzero(~np.isfinite(mid) | (bid_px[:, 0] >= ask_px[:, 0]))
    if bad.size:
        raise ValueError(f"book empty or crossed at bars {bad[:5].tolist()} (times "
                         f"{time_ns[bad[:5]].tolist()} ns)")
    return BookBars(time_ns=time_ns, mid=mid, high=np.array([r[1] for r in rows]),
                    low=np.array([r[2] for r in rows]), bid_px=bid_px, bid_sz=bid_sz,
                    ask_px=ask_px, ask_sz=ask_sz)


# --8<-- [start:book-features]
def book_features(bid_sz: np.ndarray, ask_sz: np.ndarray, spread: np.ndarray,
                  scale: float) -> np.ndarray:
    """Observation block: cumulative depth imbalance at each level and the spread over ``scale``.

    ``imbalance_j = (B_j - A_j) / (B_j + A_j)`` with ``B_j``, ``A_j`` the sizes summed over the
    best ``j`` levels (0 when both are empty); shape ``(rows, levels + 1)``.
    """
    b = np.cumsum(bid_sz, axis=-1)
    a = np.cumsum(ask_sz, axis=-1)
    total = b + a
    # docs/marketsim/market-making.md, eq. (18)
    imbalance = np.divide(b - a, total, out=np.zeros_like(total), where=total > 0)
    return np.concatenate([imbalance, (spread / scale)[..., None]], axis=-1)
# --8<-- [end:book-features]
