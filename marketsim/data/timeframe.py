"""Timeframe strings ("1m", "5m", "1h", "1d") and the regular grid they define.

See docs/marketsim/data.md, section "Timeframes and the grid".
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from marketsim.data.schema import DataError

_UNITS = {"s": "s", "m": "min", "h": "h", "d": "D", "w": "W"}
_PATTERN = re.compile(r"^(\d+)([smhdw])$")


class TimeframeError(DataError):
    """A timeframe string or an index whose timeframe cannot be determined (a :class:`DataError`,
    so every command that reports bad data reports this one too)."""


def timeframe_to_timedelta(timeframe: str) -> pd.Timedelta:
    """Return the bar length of a ccxt-style timeframe string such as ``"1m"`` or ``"4h"``."""
    if not isinstance(timeframe, str):
        raise TimeframeError(f"timeframe must be a string like '1m', got {timeframe!r}")
    match = _PATTERN.match(timeframe.strip())
    if match is None or int(match.group(1)) <= 0:
        raise TimeframeError(
            f"timeframe {timeframe!r} not understood: expected <positive int><s|m|h|d|w>, e.g. '1m'"
        )
    n, unit = int(match.group(1)), match.group(2)
    if unit == "w":
        return pd.Timedelta(weeks=n)
    return pd.Timedelta(n, unit=_UNITS[unit])


def timedelta_to_timeframe(delta: pd.Timedelta) -> str:
    """Inverse of :func:`timeframe_to_timedelta`: the shortest string naming ``delta``."""
    seconds = int(pd.Timedelta(delta).total_seconds())
    if seconds <= 0 or pd.Timedelta(seconds=seconds) != pd.Timedelta(delta):
        raise TimeframeError(f"bar length {delta} is not a positive whole number of seconds")
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def infer_timeframe(index: pd.DatetimeIndex) -> str:
    """Infer the timeframe of a candle index as the most common positive step between bars."""
    if len(index) < 2:
        raise TimeframeError(
            f"cannot infer the timeframe from {len(index)} row(s); expected at least 2 bars, "
            "or pass the timeframe (--timeframe)"
        )
    values = np.sort(index.asi8)
    steps = np.diff(values)
    steps = steps[steps > 0]
    if steps.size == 0:
        raise TimeframeError("cannot infer the timeframe: all timestamps are equal; expected "
                             "bars at different times, or pass the timeframe (--timeframe)")
    uniq, counts = np.unique(steps, return_counts=True)
    step = int(uniq[np.argmax(counts)])
    delta = pd.Timedelta(step, unit=pd.DatetimeIndex(index).unit)
    return timedelta_to_timeframe(delta)


def grid(start: pd.Timestamp, end: pd.Timestamp, timeframe: str) -> pd.DatetimeIndex:
    """The regular UTC grid of ``timeframe`` from ``start`` to ``end`` inclusive."""
    step = timeframe_to_timedelta(timeframe)
    return pd.date_range(start, end, freq=step, tz="UTC", name="timestamp")
