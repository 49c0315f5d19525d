"""Timeframe parsing and inference."""

import pandas as pd
import pytest

from marketsim.data.timeframe import (
    TimeframeError,
    infer_timeframe,
    timedelta_to_timeframe,
    timeframe_to_timedelta,
)


@pytest.mark.parametrize(
    "tf, seconds",
    [("1s", 1), ("1m", 60), ("5m", 300), ("4h", 14400), ("1d", 86400), ("1w", 604800)],
)
def test_round_trip(tf, seconds):
    assert timeframe_to_timedelta(tf).total_seconds() == seconds
    assert timedelta_to_timeframe(pd.Timedelta(seconds=seconds)) == tf


@pytest.mark.parametrize("bad", ["", "m", "0m", "1y", "1.5m", 60])
def test_bad_timeframe_names_value(bad):
    with pytest.raises(TimeframeError, match="timeframe"):
        timeframe_to_timedelta(bad)


def test_infer_uses_most_common_step_despite_gaps():
    idx = pd.DatetimeIndex(
        ["2024-01-01 00:00", "2024-01-01 00:05", "2024-01-01 00:10", "2024-01-01 01:00"], tz="UTC"
    )
    assert infer_timeframe(idx) == "5m"
    with pytest.raises(TimeframeError, match="1 row"):
        infer_timeframe(idx[:1])
