"""Known-optimum markets: the oracles against brute force, the environment against the model.

The brute-force references below simulate the account in money (equity, units, price) as the
futures kernel does, and maximise over every history-dependent policy by enumerating the whole
tree of outcomes; they share no code with the dynamic programs they check.
"""

from __future__ import annotations

import functools
import itertools
import math

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import marketsim
from marketsim.optimum import ENV_KWARGS, HIDDEN_SIGNAL_ID, NO_SIGNAL_ID, OBSERVED_SIGNAL_ID
from marketsim.optimum.model import (
    belief_update,
    expected_log_growth,
    no_signal_market,
    regime_market,
    sample_episode,
    step_reward,
)
from marketsim.optimum.oracle import (
    OraclePolicy,
    benchmark_values,
    evaluate_policy,
    flat_policy,
    greedy_policy,
    simplex_grid,
    simplex_interpolation,
    solve,
    solve_hidden,
    solve_observed,
    uniform_policy,
)
from marketsim.optimum.vector import KnownOptimumVectorEnv


# -- brute force, in money ---------------------------------------------------------------------
def _money_step(x: float, E: float, q: float, P: float, r: float, kappa: float):
    """Trade to exposure x at price P (units q -> x E / P), hold one bar of return r."""
    q1 = x * E / P
    turnover = abs(q1 - q) * P / E
    P1 = P * (1.0 + r)
    E1 = E + q1 * (P1 - P)
    return q1, P1, E1, math.log(E1 / E) - kappa * turnover


def brute_force_observed(m, combine=max) -> float:
    """Expectimax over the tree of (action, return, next regime): the best of all policies that
    see the regime and the whole history (``combine=max``), or the uniformly random policy's
    value (``combine=mean``)."""
    X, R, F, Pm = m.levels, m.R, m.F, m.P

    def v(z, E, q, P, n):
        if n == 0:
            return 0.0
        vals = []
        for x in X:
            tot = 0.0
            for j, r in enumerate(R):
                q1, P1, E1, rew = _money_step(x, E, q, P, r, m.cost_rate)
                cont = sum(Pm[z, z2] * v(z2, E1, q1, P1, n - 1) for z2 in range(len(Pm)))
                tot += F[z, j] * (rew + cont)
            vals.append(tot)
        return combine(vals)

    pi0 = m.initial_distribution
    return sum(pi0[z] * v(z, 10_000.0, 0.0, 100.0, m.episode_length) for z in range(len(pi0)))


def brute_force_hidden(m) -> float:
    """Expectimax over return histories; the predictive law of the next return is computed by
    summing over every regime path (no filter recursion)."""
    X, R, F, Pm = m.levels, m.R, m.F, m.P
    K = len(Pm)
    pi0 = m.initial_distribution

    @functools.lru_cache(None)
    def joint(hist):
        """P(z_t = z, R_1..R_t = hist) for each z, by enumerating z_0..z_t."""
        out = np.zeros(K)
        for path in itertools.product(range(K), repeat=len(hist) + 1):
            p = pi0[path[0]]
            for s, j in enumerate(hist):
                p *= F[path[s], j] * Pm[path[s], path[s + 1]]
            out[path[-1]] += p
        return out

    def v(hist, E, q, P, n):
        if n == 0:
            return 0.0
        a = joint(hist)
        pred = a @ F / a.sum()
        best = -np.inf
        for x in X:
            tot = 0.0
            for j, r in enumerate(R):
                q1, P1, E1, rew = _money_step(x, E, q, P, r, m.cost_rate)
                tot += pred[j] * (rew + v(hist + (j,), E1, q1, P1, n - 1))
            best = max(best, tot)
        return best

    return v((), 10_000.0, 0.0, 100.0, m.episode_length)


def _mean(values):
    return sum(values) / len(values)


SMALL_MARKETS = {
    "three-regimes": dict(episode_length=4),
    "two-regimes-costly": dict(episode_length=5, n_regimes=2, edge=0.2, stay=0.8,
                               cost_rate=0.002),
    "five-levels": dict(episode_length=3, n_regimes=2, max_leverage=2.0,
                        discrete_sizes=(0.5, 1.0)),
    "strong-signal": dict(episode_length=4, edge=0.4, stay=0.9, cost_rate=0.0002),
}


# -- (a) the oracles equal brute force on small cases ------------------------------------------
@pytest.mark.parametrize("name", SMALL_MARKETS)
def test_observed_oracle_equals_brute_force(name):
    m = regime_market(**SMALL_MARKETS[name])
    assert solve_observed(m).value == pytest.approx(brute_force_observed(m), abs=1e-14)


@pytest.mark.parametrize("name", SMALL_MARKETS)
def test_random_policy_value_equals_brute_force(name):
    m = regime_market(**SMALL_MARKETS[name])
    exact = brute_force_observed(m, combine=_mean)
    assert evaluate_policy(m, uniform_policy) == pytest.approx(exact, abs=1e-14)


@pytest.mark.parametrize("kw", [
    dict(episode_length=5, n_regimes=2, edge=0.4, stay=0.95, cost_rate=0.0002),
    dict(episode_length=4, edge=0.4, stay=0.9, cost_rate=0.0002),
    dict(episode_length=5, n_regimes=2, edge=0.3, stay=0.9, initial=(0.5, 0.5)),
])
def test_hidden_oracle_bounds_and_converges_to_brute_force(kw):
    m = regime_market(**kw)
    exact = brute_force_hidden(m)
    assert exact > 1e-3  # a case where learning the regime pays
    assert exact < solve_observed(m).value  # seeing the regime is worth something
    errors = [solve_hidden(m, res).value - exact for res in (5, 20, 200 if m.n_regimes == 2 else 60)]
    assert all(e >= -1e-14 for e in errors)  # interpolating a convex value over-estimates it
    assert errors[0] > errors[-1] and errors[-1] <= 1e-5


def test_no_signal_oracle_is_flat_and_every_open_loop_sequence_loses():
    m = no_signal_market(episode_length=4)
    sol = solve_observed(m)
    assert sol.value == 0.0
    for n in range(1, m.episode_length + 1):
        assert sol.action(n, 0, 0.0) == m.flat  # from flat it never opens a position
    # (from an open position it may hold: closing costs kappa |y|, holding n bars only about
    # n r^2 / 2; see the docs' pitfalls)
    assert sol.action(1, 0, -1.0) == 0
    assert solve_hidden(m).value == 0.0
    values = benchmark_values(m, observe_regime=False)
    assert values["oracle"] == 0.0 and values["flat"] == 0.0 and values["random"] < 0.0
    # every action sequence, expectation over all 2^H return paths, in money
    for seq in itertools.product(range(m.levels.size), repeat=m.episode_length):
        total = 0.0
        for path in itertools.product(m.R, repeat=m.episode_length):
            E, q, P, ret = 10_000.0, 0.0, 100.0, 0.0
            for k, r in zip(seq, path):
                q, P, E, rew = _money_step(m.levels[k], E, q, P, r, m.cost_rate)
                ret += rew
            total += ret / 2 ** m.episode_length
        if all(k == m.flat for k in seq):
            assert total == 0.0
        else:
            assert total < -1e-6


def test_policy_evaluation_of_the_oracle_is_its_value():
    m = regime_market(episode_length=40)
    sol = solve_observed(m)
    t = sol.tables

    def oracle(n, Q):
        return np.eye(m.levels.size)[np.argmax(-t.C[None] + sol.W[n][:, None, None, :], -1)]

    assert evaluate_policy(m, oracle) == pytest.approx(sol.value, abs=1e-14)
    assert evaluate_policy(m, flat_policy(m)) == 0.0
    stationary = evaluate_policy(m, greedy_policy(sol.W[m.episode_length], t.C))
    assert stationary <= sol.value + 1e-15
    assert evaluate_policy(m, uniform_policy) < 0.0 < stationary


# -- the belief filter and the grid ------------------------------------------------------------
def test_belief_update_is_bayes_rule():
    m = regime_market()
    b = np.array([0.2, 0.5, 0.3])
    post = b * m.F[:, 1] / (b @ m.F[:, 1])
    assert belief_update(b, 1, m.F, m.P) == pytest.approx(post @ m.P, abs=1e-15)
    batch = belief_update(np.stack([b, b]), np.array([0, 1]), m.F, m.P)
    assert batch[1] == pytest.approx(post @ m.P, abs=1e-15)


@pytest.mark.parametrize("K,res", [(2, 7), (3, 6), (4, 5)])
def test_simplex_interpolation_is_exact_on_grid_points_and_linear_functions(K, res):
    grid, lookup = simplex_grid(K, res)
    rows, w = simplex_interpolation(grid, res, lookup)
    assert np.allclose((w[:, :, None] * grid[rows]).sum(1), grid, atol=1e-12)
    b = np.random.default_rng(K).dirichlet(np.ones(K), size=500)
    rows, w = simplex_interpolation(b, res, lookup)
    assert np.all(w >= -1e-12) and np.allclose(w.sum(1), 1.0)
    f = grid @ np.arange(1.0, K + 1.0)  # a linear function of the belief
    assert np.allclose((w * f[rows]).sum(1), b @ np.arange(1.0, K + 1.0), atol=1e-12)


# -- the environment pays eq. (5) ---------------------------------------------------------------
@pytest.mark.parametrize("env_id", [NO_SIGNAL_ID, OBSERVED_SIGNAL_ID, HIDDEN_SIGNAL_ID])
@pytest.mark.parametrize("action_type", ["discrete", "continuous"])
def test_every_reward_is_eq5_on_the_generated_path(env_id, action_type):
    env = gymnasium.make(env_id, action_type=action_type, episode_length=64)
    m = env.unwrapped.market
    rng = np.random.default_rng(0)
    for episode in range(3):
        obs, info = env.reset(seed=episode)
        path = env.unwrapped.path
        x_prev = r_prev = 0.0
        for t in range(m.episode_length):
            if action_type == "discrete":
                k = int(rng.integers(m.levels.size))
                action = k
            else:
                action = rng.uniform(-1, 1, 1).astype(np.float32)
                k = int(np.argmin(np.abs(m.levels / m.max_leverage - action[0])))
            obs, reward, terminated, truncated, info = env.step(action)
            x, r = m.levels[k], m.R[path.atoms[t]]
            assert reward == pytest.approx(float(step_reward(x_prev, r_prev, x, r, m.cost_rate)),
                                           abs=1e-12)
            assert not info["liquidated"] and not terminated
            assert info["regime"] == path.regimes[t + 1]
            if env_id == OBSERVED_SIGNAL_ID:
                assert np.argmax(obs[-m.n_regimes:]) == path.regimes[t + 1]
            x_prev, r_prev = x, r
        assert truncated


def _row(info, i):
    """Environment i's info from a vector info (episode metrics only where its episode ended)."""
    out = {k: v[i] for k, v in info.items() if not k.endswith("episode_metrics")}
    if "episode_metrics" in info and info["_episode_metrics"][i]:
        out["episode_metrics"] = {k: v[i] for k, v in info["episode_metrics"].items()}
    return out


@pytest.mark.parametrize("env_id", [NO_SIGNAL_ID, OBSERVED_SIGNAL_ID, HIDDEN_SIGNAL_ID])
@pytest.mark.parametrize("action_type", ["discrete", "continuous"])
def test_batched_equals_single(env_id, action_type):
    """N batched environments seeded s, s+1, ... step as N single ones: the same observations,
    rewards, flags and info, bit for bit, through three autoresets (NEXT_STEP)."""
    n, h = 3, 20
    vec = gymnasium.make_vec(env_id, num_envs=n, vectorization_mode="vector_entry_point",
                             action_type=action_type, episode_length=h)
    assert isinstance(vec, KnownOptimumVectorEnv)
    singles = [gymnasium.make(env_id, action_type=action_type, episode_length=h)
               for _ in range(n)]
    rng = np.random.default_rng(3)
    obs, info = vec.reset(seed=7)
    expected = [env.reset(seed=7 + i) + (0.0, False, False) for i, env in enumerate(singles)]
    got = [(obs[i], _row(info, i), 0.0, False, False) for i in range(n)]
    ends = 0
    for t in range(3 * h + 4):
        for (o, inf, r, term, trunc), (vo, vinf, vr, vterm, vtrunc) in zip(expected, got):
            np.testing.assert_array_equal(vo, o)
            assert (vr, vterm, vtrunc) == (r, term, trunc), t
            for key, value in inf.items():
                if key == "episode_metrics":  # the episode's figures, at its last step
                    for name, v in value.items():
                        assert vinf[key][name] == v, (t, name)
                else:
                    assert vinf[key] == value, (t, key)
        if action_type == "discrete":
            actions = rng.integers(0, vec.single_action_space.n, n)
        else:
            actions = rng.uniform(-1, 1, (n, 1)).astype(np.float32)
        for i, env in enumerate(singles):
            if expected[i][3] or expected[i][4]:  # ended: the vector's next step resets it
                expected[i] = env.reset() + (0.0, False, False)
                ends += 1
            else:
                o, r, term, trunc, inf = env.step(actions[i])
                expected[i] = (o, inf, r, term, trunc)
        obs, rew, term, trunc, info = vec.step(actions)
        got = [(obs[i], _row(info, i), rew[i], term[i], trunc[i])
               for i in range(n)]
    assert ends == 3 * n  # the loop went through three episode ends in every environment


def test_registered_ids_pass_the_env_checker_and_observe_what_they_say():
    dims = {}
    for env_id in (NO_SIGNAL_ID, OBSERVED_SIGNAL_ID, HIDDEN_SIGNAL_ID):
        assert env_id in gymnasium.envs.registry
        env = gymnasium.make(env_id)
        check_env(env.unwrapped, skip_render_check=True)
        dims[env_id] = env.observation_space.shape[0]
    assert dims[OBSERVED_SIGNAL_ID] == dims[HIDDEN_SIGNAL_ID] + 3 == dims[NO_SIGNAL_ID] + 3
    assert marketsim.FUTURES_ID in gymnasium.envs.registry


def test_the_same_seed_gives_the_same_episode_and_history_says_nothing_of_z0():
    env = gymnasium.make(HIDDEN_SIGNAL_ID)
    env.reset(seed=5)
    a = env.unwrapped.path
    env.reset(seed=5)
    b = env.unwrapped.path
    assert np.array_equal(a.atoms, b.atoms) and np.array_equal(a.regimes, b.regimes)
    m = env.unwrapped.market
    rng = np.random.default_rng(1)
    z0 = np.array([sample_episode(m, rng, 4).regimes[0] for _ in range(3000)])
    assert np.allclose(np.bincount(z0, minlength=3) / 3000, m.initial_distribution, atol=0.03)


def test_parameters_that_could_reach_a_liquidation_are_refused():
    with pytest.raises(ValueError, match="liquidation"):
        regime_market(episode_length=500)
    with pytest.raises(ValueError, match="liquidation"):
        regime_market(max_leverage=3.0, episode_length=128)


# -- (b) the oracle's mean return in the environment is its value --------------------------------
def _run(env, policy, episodes: int, seed: int) -> np.ndarray:
    returns = []
    for e in range(episodes):
        obs, info = env.reset(seed=seed + e)
        policy.reset()
        total, done = 0.0, False
        while not done:
            obs, r, terminated, truncated, info = env.step(policy.act(obs, info))
            total += r
            done = terminated or truncated
        returns.append(total)
    return np.array(returns)


class _Uniform:
    """The uniformly random policy, as an actor."""

    def __init__(self, n: int):
        self.n, self.rng = n, np.random.default_rng(0)

    def reset(self) -> None:
        pass

    def act(self, obs, info) -> int:
        return int(self.rng.integers(self.n))


@pytest.mark.parametrize("env_id,episodes", [(OBSERVED_SIGNAL_ID, 300), (HIDDEN_SIGNAL_ID, 120),
                                             (NO_SIGNAL_ID, 40)])
def test_oracle_mean_return_in_the_environment_matches_its_value(env_id, episodes):
    env = gymnasium.make(env_id, episode_length=64)
    m = env.unwrapped.market
    observed = env.unwrapped.observe_regime
    sol = solve(m, observed, resolution=40)
    returns = _run(env, OraclePolicy(sol), episodes, seed=10_000)
    if env_id == NO_SIGNAL_ID:
        assert np.all(returns == 0.0)  # the oracle never trades
        return
    se = returns.std(ddof=1) / math.sqrt(episodes)
    assert abs(returns.mean() - sol.value) < 4 * se, (returns.mean(), sol.value, se)


@pytest.mark.parametrize("env_id", [NO_SIGNAL_ID, OBSERVED_SIGNAL_ID])
def test_conditional_expected_return_is_unbiased_and_less_noisy(env_id):
    """Eq. (16): summing E[ln(1 + x R) | z] minus the turnover penalty over an episode keeps the
    expected return (the random policy's, eq. (13)) and removes most of the noise."""
    n, h = 16, 64
    env = KnownOptimumVectorEnv(n, **{**ENV_KWARGS[env_id], "episode_length": h})
    m = env.market
    rng = np.random.default_rng(5)
    env.reset(seed=123)
    prev = env.current_info()
    raw, expected = np.zeros(n), np.zeros(n)
    raws, exps = [], []
    for _ in range(40 * (h + 1)):  # 40 episodes per environment
        obs, r, term, trunc, info = env.step(rng.integers(0, m.levels.size, n))
        stepped = info["episode_step"] > 0
        x = info["position"] * prev["price"] / prev["equity"]
        expected += np.where(stepped, expected_log_growth(m, prev["regime"], x)
                             - info["turnover_penalty"], 0.0)
        raw += r
        for i in np.flatnonzero(term | trunc):
            raws.append(raw[i])
            exps.append(expected[i])
            raw[i] = expected[i] = 0.0
        prev = info
    raws, exps = np.array(raws), np.array(exps)
    assert len(exps) == 40 * n
    se = exps.std(ddof=1) / math.sqrt(len(exps))
    assert abs(exps.mean() - evaluate_policy(m, uniform_policy)) < 4 * se
    assert se < raws.std(ddof=1) / math.sqrt(len(raws)) / 4


def test_random_policy_mean_return_in_the_environment_matches_its_value():
    env = gymnasium.make(OBSERVED_SIGNAL_ID, episode_length=64)
    m = env.unwrapped.market
    returns = _run(env, _Uniform(m.levels.size), 200, seed=20_000)
    se = returns.std(ddof=1) / math.sqrt(len(returns))
    assert abs(returns.mean() - evaluate_policy(m, uniform_policy)) < 4 * se


# -- the runner trains on them ------------------------------------------------------------------
def test_runner_trains_and_evaluates_on_a_known_optimum_market(tmp_path):
    from rlcore.config import resolve_configs
    from rlcore.training import train

    run, cfg = resolve_configs({"algo": "ppo", "env": OBSERVED_SIGNAL_ID, "steps": 256,
                                "n_envs": 2, "n_steps": 64, "batch_size": 64, "n_epochs": 1,
                                "progress": False, "runs_dir": str(tmp_path),
                                "eval_episodes": 2, "eval_envs": 2,
                                "env_kwargs": {"episode_length": 32}})
    summary, _ = train(run, cfg)
    assert summary["eval_episodes"] == 2 and np.isfinite(summary["eval_return_mean"])
