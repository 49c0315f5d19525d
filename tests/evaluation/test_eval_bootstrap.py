"""The Sharpe ratio's stationary-bootstrap interval (docs/guide/evaluation.md, eq. (16)):
the resampling scheme, seeding, and coverage of the true Sharpe ratio on i.i.d. returns."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from marketsim.evaluation.bootstrap import (
    sharpe_ci,
    sharpe_ci_of_equity,
    stationary_bootstrap_indices,
)
from marketsim.metrics import sharpe, sharpe_of_returns


def test_indices_are_wrapped_blocks_of_geometric_length():
    n, block = 50, 5.0
    idx = stationary_bootstrap_indices(n, 4000, block, np.random.default_rng(0))
    assert idx.shape == (4000, n) and idx.min() >= 0 and idx.max() < n
    nxt = (idx[:, :-1] + 1) % n
    starts = idx[:, 1:] != nxt  # a jump can only be a new block
    # a new block starts with probability 1/block (it may land on the next index: rarely)
    assert abs(starts.mean() - (1 / block) * (1 - 1 / n)) < 0.01
    counts = np.bincount(idx.ravel(), minlength=n) / idx.size  # every day equally likely
    assert np.abs(counts * n - 1).max() < 0.05


def test_block_one_is_the_iid_bootstrap_and_bad_input_is_refused():
    idx = stationary_bootstrap_indices(1000, 20, 1.0, np.random.default_rng(1))
    assert (idx[:, 1:] == (idx[:, :-1] + 1) % 1000).mean() < 0.01
    with pytest.raises(ValueError, match="block"):
        stationary_bootstrap_indices(10, 5, 0.5, np.random.default_rng(0))
    with pytest.raises(ValueError, match="level"):
        sharpe_ci([0.01, -0.01, 0.02], level=1.5)
    with pytest.raises(ValueError, match="finite"):
        sharpe_ci([0.01, float("nan")])


def test_point_is_eq5_and_seeded():
    r = np.random.default_rng(2).normal(0.001, 0.02, 200)
    a, b = sharpe_ci(r, seed=7, n_boot=300), sharpe_ci(r, seed=7, n_boot=300)
    assert a == b
    assert a["sharpe"] == pytest.approx(math.sqrt(365) * r.mean() / r.std(ddof=1))
    assert a["sharpe_lo"] < a["sharpe"] < a["sharpe_hi"]
    assert sharpe_ci(r, seed=8, n_boot=300)["sharpe_lo"] != a["sharpe_lo"]
    assert a["ci_block"] == math.ceil(200 ** (1 / 3))
    # degenerate inputs: one day, flat returns -> [0, 0]
    assert sharpe_ci([0.01])["sharpe_hi"] == 0.0
    flat = sharpe_ci(np.zeros(30))
    assert flat["sharpe_lo"] == flat["sharpe_hi"] == 0.0


def test_equity_version_uses_daily_returns():
    idx = pd.date_range("2024-01-01", periods=24 * 60, freq="1h", tz="UTC")
    e = pd.Series(1000 * np.exp(np.cumsum(np.random.default_rng(3).normal(0, 0.003, len(idx)))),
                  idx)
    ci = sharpe_ci_of_equity(e, n_boot=200, seed=1)
    assert ci["sharpe"] == pytest.approx(sharpe(e))
    assert float(sharpe_of_returns(np.array([[0.1, 0.1], [0.0, 0.2]]))[0]) == 0.0


def test_interval_covers_the_true_sharpe_at_about_its_nominal_rate():
    """On i.i.d. normal daily returns the true Sharpe ratio is sqrt(365) mu / sigma; over 200
    independent samples of a year the 90% interval should contain it about 90% of the time."""
    mu, sigma, n, level, trials = 0.001, 0.02, 365, 0.90, 200
    true = math.sqrt(365) * mu / sigma
    hits = 0
    for s in range(trials):
        r = np.random.default_rng(1000 + s).normal(mu, sigma, n)
        ci = sharpe_ci(r, level=level, n_boot=400, seed=s)
        hits += ci["sharpe_lo"] <= true <= ci["sharpe_hi"]
    # binomial sd at 0.9 over 200 trials: 2.1 points; allow the percentile interval's small bias
    assert 0.82 <= hits / trials <= 0.97, hits / trials
