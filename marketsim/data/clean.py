"""Cleaning candles: a pure function that returns the cleaned frame and a report of every change.

Order of the steps (docs/marketsim/data.md, section "Cleaning"):

1. convert the index to UTC (a naive index is taken as UTC);
2. stable-sort by time and drop duplicate timestamps (the later row wins);
3. repair API errors: non-positive or missing prices, high < low, open/close outside
   [low, high], negative or missing volume;
4. aggregate off-grid rows into the bars of the timeframe's grid;
5. repair one-bar spikes in the close (eq. (C1)) and flag outlier wicks (eq. (C2));
6. reindex onto the full grid and fill gaps: open = high = low = close = last close,
   volume linearly interpolated (eq. (C3)); filled rows get ``filled = True``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import numpy as np
import pandas as pd

from marketsim.data.report import CleaningReport, Gap
from marketsim.data.schema import COLUMNS, INDEX_NAME, PRICE_COLUMNS, DataError
from marketsim.data.timeframe import timeframe_to_timedelta

_MONDAY_NS = 4 * 86_400 * 10**9  # 1970-01-05 is the first Monday after the epoch


@dataclass(frozen=True)
class CleaningThresholds:
    """Thresholds of the spike and wick tests (docs/marketsim/data.md, eq. (C1)-(C2)).

    Attributes:
        scale_window: bars per block of the robust scale (block median of absolute values).
        spike_k: a close is a spike when both its return and the next return exceed
            ``spike_k`` robust scales and ``spike_min_move`` in absolute value, with opposite
            signs, while the bar's two neighbours agree within half the smaller of the two.
        spike_min_move: the smallest absolute log return that can be a spike (0.15 = 16%),
            so that real one-bar reversals (e.g. BTC/USDT +10% on 2018-10-15) are kept.
        wick_k: a wick (high above the body, or low below it) longer than ``wick_k`` robust
            range scales is flagged.
        repair_wicks: also clip flagged wicks to ``wick_k`` scales (default: flag only,
            because real flash crashes have such wicks).
        min_scale_fraction: floor of the robust scale as a fraction of the whole series'
            median nonzero absolute return (keeps flat stretches from producing a zero scale).
        max_gap_bars: the most missing bars one gap may have; a longer gap is refused with an
            error naming the rows on either side instead of being filled with invented bars
            (a timestamp cut to 8 digits once made a 52-year gap of 27 million bars). None: no
            limit. The default, 1440, is a day of 1-minute bars (the shared Binance files'
            longest real gap is 284).
    """

    scale_window: int = 240
    spike_k: float = 20.0
    spike_min_move: float = 0.15
    wick_k: float = 25.0
    repair_wicks: bool = False
    min_scale_fraction: float = 0.1
    max_gap_bars: int | None = 1440

    def __post_init__(self) -> None:
        """Validate the thresholds."""
        if self.scale_window < 3:
            raise ValueError(f"scale_window must be at least 3, got {self.scale_window}")
        if self.max_gap_bars is not None and (
                isinstance(self.max_gap_bars, bool) or not isinstance(self.max_gap_bars, int)
                or self.max_gap_bars < 0):
            raise ValueError(f"max_gap_bars must be a whole number >= 0 or None, "
                             f"got {self.max_gap_bars!r}")
        for name in ("spike_k", "spike_min_move", "wick_k", "min_scale_fraction"):
            value = getattr(self, name)
            if not np.isfinite(value) or value <= 0:
                raise ValueError(f"{name} must be a positive number, got {value!r}")


def _thresholds(overrides: dict[str, object]) -> CleaningThresholds:
    """Build :class:`CleaningThresholds`, naming any unknown keyword."""
    known = {f.name for f in fields(CleaningThresholds)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise TypeError(f"unknown cleaning threshold(s) {unknown}; known: {sorted(known)}")
    return CleaningThresholds(**overrides)  # type: ignore[arg-type]


def _iso(ts: pd.Timestamp | np.datetime64) -> str:
    """ISO-8601 UTC text of a timestamp."""
    stamp = pd.Timestamp(ts)
    return (stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp).isoformat()


def _record(
    repairs: list[dict],
    index: pd.DatetimeIndex,
    mask: np.ndarray,
    kind: str,
    column: str,
    old: np.ndarray,
    new: np.ndarray,
) -> None:
    """Append one repair record per True entry of ``mask``."""
    for i in np.flatnonzero(mask):
        repairs.append(
            {
                "timestamp": _iso(index[i]),
                "kind": kind,
                "column": column,
                "old": float(old[i]),
                "new": float(new[i]),
            }
        )


# --8<-- [start:robust-scale]
def _robust_scale(x: np.ndarray, window: int, floor_fraction: float) -> np.ndarray:
    """Block robust scale 1.4826 * median(|x|) with a floor (docs/marketsim/data.md, eq. (C1)).

    The series is cut into consecutive blocks of ``window`` values (the last, partial block
    uses the last ``window`` values); each value gets its block's median. Blocks instead of a
    sliding window keep cleaning at about a million rows per second.
    """
    a = np.abs(x)
    n = a.size
    full = n // window * window
    med = np.empty(n)
    if full:
        med[:full] = np.repeat(np.median(a[:full].reshape(-1, window), axis=1), window)
    if full < n:
        med[full:] = np.median(a[max(0, n - window) :])
    nonzero = a[a > 0]
    floor = floor_fraction * (np.median(nonzero) if nonzero.size else 0.0)
    return 1.4826 * np.maximum(med, max(floor, 1e-12))
# --8<-- [end:robust-scale]


def _repair_api_errors(
    o: np.ndarray,
    h: np.ndarray,
    l: np.ndarray,
    c: np.ndarray,
    v: np.ndarray,
    index: pd.DatetimeIndex,
    repairs: list[dict],
) -> np.ndarray:
    """Fix invalid prices/volumes, swapped high/low and bodies outside the range, in place.

    Returns the boolean mask of rows that changed.
    """
    changed = np.zeros(o.size, dtype=bool)
    bad_c = ~(np.isfinite(c) & (c > 0))
    if bad_c.all():
        raise DataError("no valid close price; expected positive numbers", column="close")
    if bad_c.any():
        new = pd.Series(np.where(bad_c, np.nan, c)).ffill().bfill().to_numpy()
        _record(repairs, index, bad_c, "invalid_price", "close", c, new)
        c[:] = new
        changed |= bad_c
    prev_c = np.concatenate([[c[0]], c[:-1]])
    bad_o = ~(np.isfinite(o) & (o > 0))
    if bad_o.any():
        new = np.where(bad_o, prev_c, o)
        _record(repairs, index, bad_o, "invalid_price", "open", o, new)
        o[:] = new
        changed |= bad_o
    for col, arr, pick in (("high", h, np.maximum), ("low", l, np.minimum)):
        bad = ~(np.isfinite(arr) & (arr > 0))
        if bad.any():
            new = np.where(bad, pick(o, c), arr)
            _record(repairs, index, bad, "invalid_price", col, arr, new)
            arr[:] = new
            changed |= bad
    swap = h < l
    if swap.any():
        new_h, new_l = np.where(swap, l, h), np.where(swap, h, l)
        _record(repairs, index, swap, "high_low_swapped", "high", h, new_h)
        _record(repairs, index, swap, "high_low_swapped", "low", l, new_l)
        h[:], l[:] = new_h, new_l
        changed |= swap
    top, bottom = np.maximum(o, c), np.minimum(o, c)
    for col, arr, bad, new in (
        ("high", h, h < top, top),
        ("low", l, l > bottom, bottom),
    ):
        if bad.any():
            fixed = np.where(bad, new, arr)
            _record(repairs, index, bad, "body_outside_range", col, arr, fixed)
            arr[:] = fixed
            changed |= bad
    bad_v = ~(np.isfinite(v) & (v >= 0))
    if bad_v.any():
        new = np.where(bad_v, 0.0, v)
        _record(repairs, index, bad_v, "invalid_volume", "volume", v, new)
        v[:] = new
        changed |= bad_v
    return changed


def _to_grid(df: pd.DataFrame, step_ns: int, weekly: bool, report: CleaningReport) -> pd.DataFrame:
    """Aggregate rows whose time is off the grid into grid bars (first/max/min/last/sum)."""
    t = df.index.asi8
    origin = _MONDAY_NS if weekly else 0
    bucket = (t - origin) // step_ns * step_ns + origin
    off = bucket != t
    if not off.any():
        return df
    report.off_grid_rows = int(off.sum())
    keys = pd.DatetimeIndex(pd.to_datetime(bucket, unit="ns", utc=True), name=INDEX_NAME)
    grouped = df.groupby(keys, sort=True)
    agg = {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"}
    for flag in ("filled", "repaired"):
        if flag in df.columns:
            agg[flag] = "max"
    out = grouped.agg(agg)
    off_buckets = np.unique(bucket[off])
    report.bars_from_off_grid = int(off_buckets.size)
    previous = out["repaired"].to_numpy(bool) if "repaired" in out else False
    out["repaired"] = previous | np.isin(out.index.asi8, off_buckets)
    return out


def _spikes(
    df: pd.DataFrame, th: CleaningThresholds, repairs: list[dict], flags: list[dict]
) -> np.ndarray:
    """Repair one-bar close spikes (eq. (C1)) and flag long wicks (eq. (C2)); rows changed."""
    o, h, l, c = (df[k].to_numpy(np.float64).copy() for k in PRICE_COLUMNS)
    n = c.size
    changed = np.zeros(n, dtype=bool)
    if n >= 3:
        r = np.diff(np.log(c))  # r[i] = log c[i+1] / c[i]
        scale = _robust_scale(r, th.scale_window, th.min_scale_fraction)
        s = scale[:-1]  # scale at the bar (aligned with r_in below)
        r_in, r_out = r[:-1], r[1:]  # into bar i and out of bar i, for i = 1..n-2
        across = np.log(c[2:] / c[:-2])
        # --8<-- [start:spike-test]
        smaller = np.minimum(np.abs(r_in), np.abs(r_out))
        # docs/marketsim/data.md, eq. (C1)
        spike = (
            (smaller > th.spike_k * s)
            & (smaller > th.spike_min_move)
            & (np.sign(r_in) != np.sign(r_out))
            & (np.abs(across) <= 0.5 * smaller)
        )
        # --8<-- [end:spike-test]
        idx = np.flatnonzero(spike) + 1
        if idx.size:
            mask = np.zeros(n, dtype=bool)
            mask[idx] = True
            # docs/marketsim/data.md, eq. (C1): replace the spike bar by a quiet bar
            new_c = c.copy()
            new_c[idx] = np.sqrt(c[idx - 1] * c[idx + 1])
            new_o = o.copy()
            new_o[idx] = c[idx - 1]
            new_h, new_l = h.copy(), l.copy()
            new_h[idx] = np.maximum(new_o[idx], new_c[idx])
            new_l[idx] = np.minimum(new_o[idx], new_c[idx])
            for col, old, new in (
                ("open", o, new_o),
                ("high", h, new_h),
                ("low", l, new_l),
                ("close", c, new_c),
            ):
                diff = mask & (old != new)
                _record(repairs, df.index, diff, "spike", col, old, new)
            o, h, l, c = new_o, new_h, new_l, new_c
            changed |= mask
    if n >= 2:
        body_top, body_bottom = np.maximum(o, c), np.minimum(o, c)
        log_range = np.log(h / l)
        rscale = _robust_scale(log_range, th.scale_window, th.min_scale_fraction) / 1.4826
        limit = th.wick_k * rscale
        # docs/marketsim/data.md, eq. (C2): wick length against the block median range
        up, down = np.log(h / body_top), np.log(body_bottom / l)
        for kind, wick, col in (("long_upper_wick", up, "high"), ("long_lower_wick", down, "low")):
            bad = wick > limit
            for i in np.flatnonzero(bad):
                flags.append(
                    {
                        "timestamp": _iso(df.index[i]),
                        "kind": kind,
                        "value": float(wick[i]),
                        "threshold": float(limit[i]),
                    }
                )
            if th.repair_wicks and bad.any():
                arr = h if col == "high" else l
                new = (
                    np.where(bad, body_top * np.exp(limit), h)
                    if col == "high"
                    else np.where(bad, body_bottom * np.exp(-limit), l)
                )
                _record(repairs, df.index, bad, "wick_clipped", col, arr, new)
                if col == "high":
                    h = new
                else:
                    l = new
                changed |= bad
    if changed.any():
        df["open"], df["high"], df["low"], df["close"] = o, h, l, c
    return changed


def _check_gaps(t: np.ndarray, order: np.ndarray, step_ns: int, max_bars: int,
                first_row: int | None) -> None:
    """Refuse a gap of more than ``max_bars`` missing bars in sorted times ``t`` (before anything
    is filled); the error names both bars' times and, for a file, their rows."""
    if t.size < 2:
        return
    missing = np.diff(t) // step_ns - 1
    i = int(np.argmax(missing))
    if missing[i] <= max_bars:
        return
    a, b = pd.Timestamp(t[i], tz="UTC"), pd.Timestamp(t[i + 1], tz="UTC")

    def where(k: int, ts: pd.Timestamp) -> str:
        row = f"row {first_row + int(order[k])} " if first_row is not None else ""
        return f"{row}({ts.isoformat()})"

    raise DataError(
        f"{int(missing[i]):,} bars missing between {where(i, a)} and {where(i + 1, b)}; "
        f"refusing to invent more than {max_bars:,} (max_gap_bars). A timestamp with digits "
        "missing or extra? Fix it, or allow longer gaps with --max-gap-bars"
    )


# --8<-- [start:fill-gaps]
def _fill_gaps(df: pd.DataFrame, step: pd.Timedelta, report: CleaningReport) -> pd.DataFrame:
    """Reindex onto the full grid; fill missing bars by eq. (C3) and mark them ``filled``."""
    full = pd.date_range(df.index[0], df.index[-1], freq=step, name=INDEX_NAME)
    if len(full) == len(df):
        return df
    out = df.reindex(full)
    missing = out["close"].isna().to_numpy()
    # docs/marketsim/data.md, eq. (C3): carry the last close, interpolate volume
    last_close = out["close"].ffill()
    for col in PRICE_COLUMNS:
        out[col] = out[col].fillna(last_close)
    out["volume"] = out["volume"].interpolate(method="linear")
    out["filled"] = out["filled"].astype("boolean").fillna(True).astype(bool)
    out["repaired"] = out["repaired"].astype("boolean").fillna(False).astype(bool)
    edges = np.diff(np.concatenate([[0], missing.astype(np.int8), [0]]))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1) - 1
    report.gaps = [
        Gap(start=_iso(full[s]), end=_iso(full[e]), bars=int(e - s + 1))
        for s, e in zip(starts, ends)
    ]
    report.filled_rows = int(missing.sum())
    return out
# --8<-- [end:fill-gaps]


def clean_candles(
    df: pd.DataFrame, timeframe: str, **thresholds: object
) -> tuple[pd.DataFrame, CleaningReport]:
    """Clean a candle frame onto ``timeframe``'s grid; returns ``(cleaned, report)``.

    Pure: ``df`` is not modified. The output is sorted, unique, on the grid, UTC, with
    ``low <= open, close <= high``, positive prices, non-negative volume, and bool columns
    ``filled`` and ``repaired``. Keyword arguments override :class:`CleaningThresholds`.
    A :class:`DataError` names the file the frame was read from (``df.attrs["source"]``).
    """
    try:
        return _clean(df, timeframe, **thresholds)
    except DataError as e:
        raise e.located(df.attrs.get("source")) from None


def _clean(
    df: pd.DataFrame, timeframe: str, **thresholds: object
) -> tuple[pd.DataFrame, CleaningReport]:
    th = _thresholds(thresholds)
    step = timeframe_to_timedelta(timeframe)
    report = CleaningReport(timeframe=timeframe, thresholds=asdict(th), rows_in=len(df))
    if not isinstance(df.index, pd.DatetimeIndex):
        raise DataError(f"expected a DatetimeIndex, got {type(df.index).__name__}")
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise DataError(
            f"missing; expected columns {list(COLUMNS)}, found {list(df.columns)}",
            column=missing[0],
        )
    if len(df) == 0:
        raise DataError("no rows to clean; expected at least one candle")
    index = df.index
    if index.tz is None:
        report.timezone_in = "naive, taken as UTC"
        index = index.tz_localize("UTC")
    elif str(index.tz) != "UTC":
        report.timezone_in = f"{index.tz}, converted to UTC"
        index = index.tz_convert("UTC")
    out = pd.DataFrame(
        {c: pd.to_numeric(df[c], errors="raise").to_numpy(np.float64, copy=True) for c in COLUMNS},
        index=pd.DatetimeIndex(index, name=INDEX_NAME).as_unit("ns"),
    )
    for flag in ("filled", "repaired"):
        out[flag] = df[flag].to_numpy(bool) if flag in df.columns else False
    t = out.index.asi8
    report.out_of_order = int((np.diff(t) < 0).sum())
    order = np.argsort(t, kind="stable")
    if th.max_gap_bars is not None:
        _check_gaps(t[order], order, int(step.value), th.max_gap_bars,
                    df.attrs.get("first_row"))
    if report.out_of_order:
        out = out.iloc[order]
    dup_later = out.index.duplicated(keep="last")
    if dup_later.any():
        report.duplicates_dropped = int(dup_later.sum())
        kept = out[~dup_later]
        dropped = out[dup_later]
        ref = kept.loc[dropped.index, list(COLUMNS)].to_numpy()
        differs = ~np.all(
            (ref == dropped[list(COLUMNS)].to_numpy())
            | (np.isnan(ref) & np.isnan(dropped[list(COLUMNS)].to_numpy())),
            axis=1,
        )
        report.duplicate_conflicts = int(differs.sum())
        out = kept
    repairs: list[dict] = []
    arrays = [out[c].to_numpy(np.float64).copy() for c in COLUMNS]
    changed = _repair_api_errors(*arrays, index=out.index, repairs=repairs)
    for c, a in zip(COLUMNS, arrays):
        out[c] = a
    out["repaired"] = out["repaired"].to_numpy() | changed
    out = _to_grid(out, int(step.value), timeframe.endswith("w"), report)
    changed = _spikes(out, th, repairs, report.flags)
    out["repaired"] = out["repaired"].to_numpy(bool) | changed
    out["filled"] = out["filled"].to_numpy(bool)
    out = _fill_gaps(out, step, report)
    report.repairs = repairs
    report.rows_out = len(out)
    out = out[[*COLUMNS, "filled", "repaired"]]
    out.index = pd.DatetimeIndex(out.index, freq=None, name=INDEX_NAME)
    return out, report
