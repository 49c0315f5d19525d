"""Model-mode dynamics against eq. (17): fill frequencies, mid increments, jumps; invariants."""

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from marketsim.mm.env import MarketMakingEnv
from marketsim.mm.vector import MarketMakingVectorEnv


def _fixed_depth_run(depth, n_envs=500, **kw):
    """Quote at a fixed depth on both sides for one episode; return per-step arrays."""
    env = MarketMakingVectorEnv(num_envs=n_envs, max_inventory=1e9, **kw)
    env.reset(seed=123)
    bids, asks, moves = [], [], []
    for _ in range(env.config.n_steps):
        mid = env.kernel.mid.copy()
        _, _, _, _, info = env.step_quotes(mid - depth, mid + depth)
        bids.append(info["bid_fill"])
        asks.append(info["ask_fill"])
        moves.append(info["mid"] - mid)
    return np.array(bids), np.array(asks), np.array(moves)


def test_fill_frequency_matches_intensity():
    # p = A exp(-k delta) dt = 140 * exp(-1.5 * 0.8) * 0.005 = 0.21084; 100,000 Bernoulli draws
    # per side, standard error sqrt(p(1-p)/n) = 0.00129; allow 4 SE
    bids, asks, _ = _fixed_depth_run(0.8)
    p = 140 * math.exp(-1.5 * 0.8) * 0.005
    se = math.sqrt(p * (1 - p) / bids.size)
    assert abs(bids.mean() - p) < 4 * se
    assert abs(asks.mean() - p) < 4 * se
    # bid and ask fills are independent draws
    assert abs(np.mean(bids & asks) - p * p) < 4 * math.sqrt(p * p / bids.size)


def test_fill_probability_clipped_at_one():
    bids, asks, _ = _fixed_depth_run(-1.0, n_envs=10)  # quotes through the mid
    assert bids.all() and asks.all()


def test_mid_increments_are_gaussian_with_sigma_sqrt_dt():
    _, _, moves = _fixed_depth_run(1.0)
    sd = 2.0 * math.sqrt(0.005)
    n = moves.size
    assert abs(moves.mean()) < 4 * sd / math.sqrt(n)
    assert abs(moves.std() / sd - 1) < 4 / math.sqrt(2 * n)
    # fourth moment of a normal: kurtosis 3 (SE about sqrt(24/n))
    kurt = np.mean((moves - moves.mean()) ** 4) / moves.var() ** 2
    assert abs(kurt - 3) < 4 * math.sqrt(24 / n)


def test_jump_increments():
    # lam = 20, dt = 0.005: jump probability 1 - exp(-0.1) = 0.09516; jumps N(-1, 0.5^2)
    _, _, moves = _fixed_depth_run(1.0, jump_intensity=20.0, jump_mean=-1.0, jump_std=0.5)
    p = -math.expm1(-0.1)
    expected_mean = p * -1.0
    var = 4 * 0.005 + p * (0.25 + 1.0) - (p * 1.0) ** 2
    assert abs(moves.mean() - expected_mean) < 4 * math.sqrt(var / moves.size)


@settings(max_examples=25, deadline=None)
@given(action_type=st.sampled_from(["discrete", "continuous", "quotes"]),
       latency=st.integers(0, 3), fee=st.floats(-0.001, 0.001), q_max=st.integers(1, 6),
       seed=st.integers(0, 10_000))
def test_invariants(action_type, latency, fee, q_max, seed):
    env = MarketMakingEnv(action_type=action_type, latency=latency, maker_fee=fee,
                          max_inventory=q_max, n_steps=30, A=400.0)
    env.action_space.seed(seed)
    obs, _ = env.reset(seed=seed)
    for _ in range(30):
        obs, r, te, tr, info = env.step(env.action_space.sample())
        assert np.all(np.isfinite(obs)) and math.isfinite(r)
        assert abs(info["inventory"]) <= q_max
        assert math.isclose(info["pnl"], info["cash"] + info["inventory"] * info["mid"],
                            rel_tol=1e-9, abs_tol=1e-9)
    assert te and not tr
