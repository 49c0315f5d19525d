"""GAE and discounted returns: closed forms, a plain-loop reference, truncation vs termination."""

import numpy as np
import pytest

from rlcore.returns import discounted_returns, gae


def loop_gae(r, v, nv, term, trunc, gamma, lam):
    """Independent reference: one environment at a time, plain Python."""
    T, N = r.shape
    adv = np.zeros((T, N))
    for n in range(N):
        nxt = 0.0
        for t in reversed(range(T)):
            boot = 0.0 if term[t, n] else nv[t, n]
            delta = r[t, n] + gamma * boot - v[t, n]
            carry = 0.0 if (term[t, n] or trunc[t, n]) else nxt
            nxt = delta + gamma * lam * carry
            adv[t, n] = nxt
    return adv


@pytest.mark.parametrize("gamma", [1.0, 0.99])
@pytest.mark.parametrize("lam", [1.0, 0.9])
def test_constant_value_closed_form(gamma, lam):
    # V = c everywhere, r constant, no episode end: delta = r + (gamma - 1) c and
    # A_t = delta * sum_{k < T - t} (gamma lam)^k.
    T, r, c = 7, 0.5, 2.0
    rew = np.full((T, 1), r)
    val = np.full((T, 1), c)
    z = np.zeros((T, 1), bool)
    adv, ret = gae(rew, val, val, z, z, gamma, lam)
    delta = r + gamma * c - c
    gl = gamma * lam
    expected = np.array([delta * sum(gl**k for k in range(T - t)) for t in range(T)])
    np.testing.assert_allclose(adv[:, 0], expected, rtol=1e-12)
    np.testing.assert_allclose(ret, adv + val)
    if gamma == 1.0 and lam == 1.0:
        np.testing.assert_allclose(adv[:, 0], r * np.arange(T, 0, -1))


def test_lambda_one_equals_bootstrapped_discounted_return_minus_value():
    rng = np.random.default_rng(0)
    T, N = 9, 3
    r, v, nv = rng.normal(size=(T, N)), rng.normal(size=(T, N)), rng.normal(size=(T, N))
    nv[:-1] = v[1:]
    term = rng.random((T, N)) < 0.15
    trunc = (rng.random((T, N)) < 0.15) & ~term
    # where a row ended, next_values is the value of the real final observation
    nv[trunc] = rng.normal(size=trunc.sum())
    adv, _ = gae(r, v, nv, term, trunc, 0.97, 1.0)
    np.testing.assert_allclose(adv, discounted_returns(r, nv, term, trunc, 0.97) - v, atol=1e-12)


def test_worked_example_from_docs():
    # docs/algorithms/ppo.md, "GAE worked by hand": gamma 0.9, lambda 0.5.
    r = np.array([[1.0], [0.0], [2.0]])
    v = np.array([[0.5], [1.0], [0.5]])
    nv = np.array([[1.0], [0.5], [1.0]])
    z = np.zeros((3, 1), bool)
    adv, ret = gae(r, v, nv, z, z, 0.9, 0.5)
    np.testing.assert_allclose(adv[:, 0], [1.6385, 0.53, 2.4], atol=1e-12)
    np.testing.assert_allclose(ret[:, 0], [2.1385, 1.53, 2.9], atol=1e-12)
    trunc = np.array([[False], [True], [False]])
    adv_tr, _ = gae(r, v, nv, z, trunc, 0.9, 0.5)
    np.testing.assert_allclose(adv_tr[:, 0], [1.1525, -0.55, 2.4], atol=1e-12)
    adv_te, _ = gae(r, v, nv, trunc, z, 0.9, 0.5)
    np.testing.assert_allclose(adv_te[:, 0], [0.95, -1.0, 2.4], atol=1e-12)


def test_matches_plain_loop_reference_with_episode_ends():
    rng = np.random.default_rng(1)
    T, N = 50, 6
    r, v, nv = rng.normal(size=(T, N)), rng.normal(size=(T, N)), rng.normal(size=(T, N))
    term = rng.random((T, N)) < 0.1
    trunc = (rng.random((T, N)) < 0.1) & ~term
    for gamma, lam in [(0.99, 0.95), (1.0, 1.0), (0.9, 0.0)]:
        adv, ret = gae(r, v, nv, term, trunc, gamma, lam)
        np.testing.assert_allclose(adv, loop_gae(r, v, nv, term, trunc, gamma, lam), atol=1e-12)
        np.testing.assert_allclose(ret, adv + v)


def test_truncation_bootstraps_from_final_observation_value():
    # One step that is truncated: A = r + gamma V(final obs) - V(s); terminated: A = r - V(s).
    r, v = np.array([[1.0]]), np.array([[0.2]])
    final_v = np.array([[5.0]])
    adv_trunc, _ = gae(r, v, final_v, np.array([[False]]), np.array([[True]]), 0.9, 0.95)
    adv_term, _ = gae(r, v, final_v, np.array([[True]]), np.array([[False]]), 0.9, 0.95)
    assert adv_trunc[0, 0] == pytest.approx(1.0 + 0.9 * 5.0 - 0.2)
    assert adv_term[0, 0] == pytest.approx(1.0 - 0.2)
    # and truncation cuts the recursion: the next row (another episode) does not leak back
    r2 = np.array([[1.0], [100.0]])
    v2 = np.zeros((2, 1))
    nv2 = np.array([[5.0], [0.0]])
    adv2, _ = gae(r2, v2, nv2, np.zeros((2, 1), bool), np.array([[True], [False]]), 0.9, 1.0)
    assert adv2[0, 0] == pytest.approx(1.0 + 0.9 * 5.0)
