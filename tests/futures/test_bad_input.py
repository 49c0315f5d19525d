"""Bad data, bad keywords and actions outside the space give clear errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from futures_helpers import random_candles

from marketsim.futures.env import CryptoFuturesEnv
from marketsim.futures.market import MarketDataError
from marketsim.futures.vector import CryptoFuturesVectorEnv


def _df() -> pd.DataFrame:
    return random_candles(300, seed=0)


def test_nan_price_names_column_and_row() -> None:
    df = _df()
    df.iloc[123, df.columns.get_loc("close")] = np.nan
    with pytest.raises(MarketDataError, match=r"'close'.*row 123"):
        CryptoFuturesEnv(data=df)


def test_negative_price_and_volume() -> None:
    df = _df()
    df.iloc[7, df.columns.get_loc("low")] = -1.0
    with pytest.raises(MarketDataError, match=r"'low'.*row 7.*> 0"):
        CryptoFuturesEnv(data=df)
    df = _df()
    df.iloc[9, df.columns.get_loc("volume")] = -5.0
    with pytest.raises(MarketDataError, match=r"'volume'.*row 9"):
        CryptoFuturesEnv(data=df)


def test_unsorted_duplicate_and_naive_index() -> None:
    df = _df()
    with pytest.raises(MarketDataError, match=r"strictly increasing; row 51"):
        CryptoFuturesEnv(data=df.iloc[np.r_[0:50, 51, 50, 52:300]])
    with pytest.raises(MarketDataError, match=r"strictly increasing"):
        CryptoFuturesEnv(data=df.iloc[np.r_[0:50, 49:300]])
    with pytest.raises(MarketDataError, match=r"tz-aware"):
        CryptoFuturesEnv(data=df.tz_localize(None))


def test_missing_column_high_below_low_and_too_short() -> None:
    with pytest.raises(MarketDataError, match=r"missing column.*volume"):
        CryptoFuturesEnv(data=_df().drop(columns="volume"))
    df = _df()
    df.iloc[5, df.columns.get_loc("high")] = df["low"].iloc[5] * 0.5
    with pytest.raises(MarketDataError, match=r"row 5.*high < low"):
        CryptoFuturesEnv(data=df)
    with pytest.raises(MarketDataError, match=r"rows, need at least"):
        CryptoFuturesEnv(data=_df().iloc[:20])


def test_bad_funding_and_data_types() -> None:
    s = pd.Series([1e-4, np.nan], index=pd.DatetimeIndex(["2021-01-01", "2021-01-02"], tz="UTC"))
    with pytest.raises(MarketDataError, match=r"funding: row 1"):
        CryptoFuturesEnv(data=_df(), funding=s)
    with pytest.raises(TypeError, match=r"funding"):
        CryptoFuturesEnv(data=_df(), funding="high")
    with pytest.raises(TypeError, match=r"data: expected"):
        CryptoFuturesEnv(data=[1, 2, 3])


def test_bad_keywords() -> None:
    with pytest.raises(TypeError, match=r"unknown keyword.*levrage"):
        CryptoFuturesEnv(data=_df(), levrage=3)
    with pytest.raises(ValueError, match=r"action_type"):
        CryptoFuturesEnv(data=_df(), action_type="box")
    with pytest.raises(ValueError, match=r"max_leverage.*> 0"):
        CryptoFuturesEnv(data=_df(), max_leverage=0)
    with pytest.raises(ValueError, match=r"taker_fee"):
        CryptoFuturesEnv(data=_df(), taker_fee=float("nan"))
    with pytest.raises(ValueError, match=r"discrete_sizes"):
        CryptoFuturesEnv(data=_df(), action_type="discrete", discrete_sizes=(0.5, 2.0))
    with pytest.raises(ValueError, match=r"brackets"):
        CryptoFuturesEnv(data=_df(), brackets=((10.0, 0.01, 10.0),))


@pytest.mark.parametrize("action", [np.array([1.5]), np.array([np.nan]), 2.0, np.zeros(2)])
def test_continuous_action_outside_space(action) -> None:
    env = CryptoFuturesEnv(data=_df())
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"action: expected one number in \[-1, 1\]"):
        env.step(action)


@pytest.mark.parametrize("action", [3, -1, 1.0, True])
def test_discrete_action_outside_space(action) -> None:
    env = CryptoFuturesEnv(data=_df(), action_type="discrete")
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"action: expected an int in \[0, 3\)"):
        env.step(action)


def test_vector_actions_outside_space() -> None:
    env = CryptoFuturesVectorEnv(num_envs=3, data=_df())
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"actions\[2\]"):
        env.step(np.array([[0.0], [0.5], [-1.01]]))
    with pytest.raises(ValueError, match=r"shape"):
        env.step(np.zeros((2, 1)))
    denv = CryptoFuturesVectorEnv(num_envs=2, data=_df(), action_type="discrete")
    denv.reset(seed=0)
    with pytest.raises(ValueError, match=r"actions\[1\]"):
        denv.step(np.array([0, 3]))


def test_step_before_reset_and_after_end() -> None:
    env = CryptoFuturesEnv(data=_df(), episode_length=1)
    with pytest.raises(RuntimeError, match="reset"):
        env.step(np.zeros(1))
    env.reset(seed=0)
    _, _, _, trunc, _ = env.step(np.zeros(1))
    assert trunc
    with pytest.raises(RuntimeError, match="reset"):
        env.step(np.zeros(1))
