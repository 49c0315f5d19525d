"""MarketMakingEnv / MarketMakingVectorEnv: contracts the engine relies on."""

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import marketsim  # noqa: F401  (registers the environments)
from marketsim.mm.env import MarketMakingEnv
from marketsim.mm.jumps import gaussian_jump_mgf, merton_reservation_price
from marketsim.mm.vector import MarketMakingVectorEnv

ENV_ID = "marketsim/MarketMaking-v0"


@pytest.mark.parametrize("action_type", ["discrete", "continuous", "quotes"])
def test_gymnasium_checker_passes(action_type):
    env = gymnasium.make(ENV_ID, action_type=action_type)
    with pytest.warns(UserWarning, match="infinity"):  # unbounded Box is deliberate (PnL)
        check_env(env.unwrapped, skip_render_check=True)


def _run_singles(n, seed, actions, kwargs):
    """Step n single environments like a NEXT_STEP vector env would, recording everything."""
    envs = [MarketMakingEnv(**kwargs) for _ in range(n)]
    obs = np.stack([e.reset(seed=seed + i)[0] for i, e in enumerate(envs)])
    done = np.zeros(n, dtype=bool)
    rows = [(obs, np.zeros(n), done.copy(), done.copy())]
    for a in actions:
        o, r, te, tr = [], [], [], []
        for i, e in enumerate(envs):
            if done[i]:
                oi, _ = e.reset()
                ri, tei, tri = 0.0, False, False
            else:
                oi, ri, tei, tri, _ = e.step(a[i])
            o.append(oi)
            r.append(ri)
            te.append(tei)
            tr.append(tri)
        done = np.array(te) | np.array(tr)
        rows.append((np.stack(o), np.array(r), np.array(te), np.array(tr)))
    return rows


@pytest.mark.parametrize("action_type,extra", [
    ("discrete", {}),
    ("continuous", {"jump_intensity": 3.0, "jump_std": 1.0, "latency": 2}),
    ("quotes", {"rolling_horizon": 0.5}),
])
def test_batched_equals_singles_across_autoresets(action_type, extra):
    kwargs = dict(action_type=action_type, n_steps=7, **extra)
    n, seed = 3, 40
    vec = gymnasium.make_vec(ENV_ID, num_envs=n, vectorization_mode="vector_entry_point",
                             **kwargs)
    assert vec.metadata["autoreset_mode"] == gymnasium.vector.AutoresetMode.NEXT_STEP
    space = vec.single_action_space
    space.seed(1)
    actions = [np.stack([space.sample() for _ in range(n)]) for _ in range(20)]
    singles = _run_singles(n, seed, actions, kwargs)
    obs, _ = vec.reset(seed=seed)
    np.testing.assert_array_equal(obs, singles[0][0])
    for t, a in enumerate(actions, start=1):
        obs, r, te, tr, info = vec.step(a)
        np.testing.assert_array_equal(obs, singles[t][0])
        np.testing.assert_array_equal(r, singles[t][1])
        np.testing.assert_array_equal(te, singles[t][2])
        np.testing.assert_array_equal(tr, singles[t][3])
        assert set(info) >= {"pnl", "inventory", "cash", "spread", "fills"}
        assert all(np.shape(v) == (n,) for v in info.values())


def test_next_step_autoreset_semantics():
    vec = MarketMakingVectorEnv(num_envs=2, n_steps=3)
    obs0, _ = vec.reset(seed=1)
    for _ in range(2):
        vec.step(np.array([2, 2]))
    _, r, te, tr, _ = vec.step(np.array([2, 2]))
    assert te.all() and not tr.any()
    obs, r, te, tr, info = vec.step(np.array([99, 99]))  # invalid actions are ignored here
    assert (r == 0).all() and not te.any() and not tr.any()
    np.testing.assert_array_equal(info["pnl"], 0.0)
    assert np.all(obs[:, 1] == 1.0)  # full time left again
    assert np.all(np.isfinite(obs))


def test_same_seed_same_path_different_seed_different_path():
    def pnl(seed):
        env = MarketMakingEnv()
        env.reset(seed=seed)
        total = 0.0
        for _ in range(50):
            total += env.step(2)[1]
        return total
    assert pnl(5) == pnl(5)
    assert pnl(5) != pnl(6)


def test_observation_finite_and_terminal_tau_zero():
    env = MarketMakingEnv(action_type="quotes", n_steps=20)
    obs, _ = env.reset(seed=0)
    for _ in range(20):
        obs, r, te, tr, info = env.step(np.array([0.0, 0.0], dtype=np.float32))
        assert obs is not None and obs.dtype == np.float32 and np.all(np.isfinite(obs))
    assert te and not tr
    assert obs[1] == 0.0 and env.kernel.tau()[0] == 0.0


def test_reward_is_pnl_change_minus_penalty():
    env = MarketMakingEnv(inventory_penalty=0.3, n_steps=50)
    env.reset(seed=2)
    prev = 0.0
    for _ in range(50):
        _, r, _, _, info = env.step(0)
        expected = info["pnl"] - prev - 0.3 * info["inventory"] ** 2 * 0.02
        assert r == pytest.approx(expected, abs=1e-9)
        prev = info["pnl"]


def test_cara_consistent_penalty_default():
    # phi = reward_gamma * sigma^2 / 2 = 0.1 * 4 / 2 = 0.2
    assert MarketMakingEnv().kernel.phi == pytest.approx(0.2)


def test_fills_and_cash_accounting():
    env = MarketMakingEnv(n_steps=100, maker_fee=0.001)
    env.reset(seed=3)
    cash = 0.0
    for _ in range(100):
        _, _, _, _, info = env.step(2)
        fee = 0.001 * (info["bid"] * info["bid_fill"] + info["ask"] * info["ask_fill"])
        cash += info["ask"] * info["ask_fill"] - info["bid"] * info["bid_fill"] - fee
        assert info["cash"] == pytest.approx(cash)
        assert info["pnl"] == pytest.approx(info["cash"] + info["inventory"] * info["mid"])


def test_inventory_limit_and_latency():
    # huge A: every posted quote fills; quotes skewed so only bids are close
    env = MarketMakingEnv(action_type="quotes", A=1e6, max_inventory=3, n_steps=10,
                          quote_scale=1.0)
    env.reset(seed=0)
    for _ in range(10):
        _, _, _, _, info = env.step(np.array([1.0, -1.0], dtype=np.float32))
        assert abs(info["inventory"]) <= 3
    lat = MarketMakingEnv(A=1e6, latency=2, n_steps=10)
    lat.reset(seed=0)
    fills = [lat.step(2)[4]["fills"] for _ in range(4)]
    assert fills[:2] == [0, 0] and fills[2] > 0


def test_merton_quotes_use_corrected_reservation_price():
    env = MarketMakingEnv(jump_intensity=4.0, jump_mean=-0.5, jump_std=1.0)
    env.reset(seed=0)
    k = env.kernel
    k.q[:] = 2.0
    bid, ask = k.as_quotes(np.array([0.1]), 1.5, 2.0, np.array([0.7]))
    r = merton_reservation_price(100.0, 2.0, 0.1, 2.0, 0.7, 4.0, gaussian_jump_mgf(-0.5, 1.0))
    assert 0.5 * (bid[0] + ask[0]) == pytest.approx(float(r))


@pytest.mark.parametrize("kwargs,match", [
    (dict(k=0.0), "k"), (dict(k=-1.0), "k"), (dict(sigma=float("nan")), "sigma"),
    (dict(gammas=(0.1, 0.0)), "gammas"), (dict(gamma_min=-1.0), "gamma_min"),
    (dict(action_type="buy"), "action_type"), (dict(mode="book"), "mode"),
    (dict(fill_prob=2.0), "fill_prob"), (dict(mode="replay"), "replay"),
])
def test_bad_parameters_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MarketMakingEnv(**kwargs)


def test_unknown_kwarg_raises():
    with pytest.raises(TypeError, match="bogus"):
        MarketMakingVectorEnv(num_envs=2, bogus=1)
