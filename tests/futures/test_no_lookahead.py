"""Perturbing every bar after t leaves observations and rewards up to t unchanged."""

from __future__ import annotations

import numpy as np
import pandas as pd
from futures_helpers import random_candles

from marketsim.futures.env import CryptoFuturesEnv


def _trajectory(df, funding, actions, start):
    env = CryptoFuturesEnv(data=df, funding=funding, window=8, vol_window=16,
                           episode_length=None, max_leverage=5.0)
    obs, _ = env.reset(options={"start": start})
    out = [(start, obs, 0.0)]
    for a in actions:
        obs, r, term, trunc, info = env.step(a)
        out.append((info["bar"], obs, r))
        if term or trunc:
            break
    return out


def test_future_bars_do_not_change_past_observations_or_rewards() -> None:
    df = random_candles(600, seed=9)
    idx = df.index
    funding = pd.Series(np.random.default_rng(1).normal(0, 1e-4, 200),
                        index=pd.date_range(idx[0], periods=200, freq="8h"))
    rng = np.random.default_rng(2)
    actions = [rng.uniform(-1, 1, 1) for _ in range(200)]
    cut = 300  # bars > cut are perturbed
    bumped = df.copy()
    factor = np.exp(rng.normal(0, 0.05, len(df) - cut - 1))
    for col in ("open", "high", "low", "close"):
        bumped.iloc[cut + 1 :, bumped.columns.get_loc(col)] *= factor
    bumped.iloc[cut + 1 :, bumped.columns.get_loc("volume")] *= 3.0
    f2 = funding.copy()
    f2[f2.index > idx[cut]] += 0.001  # rates after the cut's close time are not yet known
    f2[f2.index == idx[cut]] += 0.0  # (the event at the cut's open time was known)
    base = _trajectory(df, funding, actions, start=150)
    pert = _trajectory(bumped, f2, actions, start=150)
    checked = 0
    for (t1, o1, r1), (t2, o2, r2) in zip(base, pert):
        assert t1 == t2
        if t1 <= cut:
            np.testing.assert_array_equal(o1, o2)
            assert r1 == r2
            checked += 1
    assert checked == cut - 150 + 1
    # and the perturbation does change what comes after (the test can fail)
    assert any(not np.array_equal(o1, o2) for (t, o1, _), (_, o2, _) in zip(base, pert) if t > cut)
