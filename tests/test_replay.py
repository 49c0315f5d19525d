"""Replay buffer, n-step returns and prioritised replay (docs/algorithms/dqn.md, eqs. (1)-(6))."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from rlcore.per import PrioritizedReplayBuffer
from rlcore.replay import ReplayBuffer


def _stream(n_envs: int, T: int, seed: int):
    """A NEXT_STEP-autoreset-like stream: after an episode end the next step is invalid.

    obs[:, 0] carries a unique id per stored transition so the test can identify it.
    Yields (obs, actions, rewards, next_obs, terminated, truncated, valid) per vector step.
    """
    rng = np.random.default_rng(seed)
    uid = 0
    ended = np.zeros(n_envs, bool)
    for _ in range(T):
        obs = np.zeros((n_envs, 2), np.float32)
        obs[:, 0] = uid + np.arange(n_envs)
        obs[:, 1] = rng.normal(size=n_envs)
        uid += n_envs
        nxt = np.zeros((n_envs, 2), np.float32)
        nxt[:, 0] = -(obs[:, 0] + 1)  # marks "next obs of id" as -(id + 1)
        r = rng.normal(size=n_envs).astype(np.float32)
        term = rng.random(n_envs) < 0.08
        trunc = (~term) & (rng.random(n_envs) < 0.05)
        valid = ~ended
        yield obs, rng.normal(size=(n_envs, 1)).astype(np.float32), r, nxt, term, trunc, valid
        ended = (term | trunc) & valid


def _reference_nstep(seq: list[dict], i: int, n: int, gamma: float):
    """Plain loop over one environment's stored transitions in time order."""
    R, disc, m = 0.0, 1.0, 0
    for k in range(n):
        j = i + k
        if j >= len(seq):
            break
        R += disc * seq[j]["r"]
        m += 1
        last = seq[j]
        disc *= gamma
        if seq[j]["term"] or seq[j]["trunc"]:
            break
    return R, last["term"], last["id"], m


@pytest.mark.parametrize("n_envs", [1, 3])  # one environment has a path of its own
@pytest.mark.parametrize("capacity,n_step", [(10_000, 3), (45, 4), (45, 1)])
def test_nstep_returns_match_a_plain_loop(capacity: int, n_step: int, n_envs: int) -> None:
    gamma = 0.9
    buf = ReplayBuffer(capacity, n_envs, (2,), (1,), seed=1)
    per_env: list[list[dict]] = [[] for _ in range(n_envs)]
    for obs, act, r, nxt, term, trunc, valid in _stream(n_envs, 200, seed=capacity + n_step):
        buf.add(obs, act, r, nxt, term, trunc, valid)
        for e in np.flatnonzero(valid):
            per_env[e].append({"id": int(obs[e, 0]), "r": float(r[e]), "term": bool(term[e]),
                               "trunc": bool(trunc[e])})
    # the buffer keeps the newest `rows` transitions of each environment
    kept = [seq[-buf.rows:] for seq in per_env]
    assert buf.size == sum(len(s) for s in kept)
    slots = np.flatnonzero(buf.valid_slots_mask())
    b = buf.gather(slots, gamma, n_step, np.ones(len(slots), np.float32))
    by_id = {t["id"]: (e, i) for e, seq in enumerate(kept) for i, t in enumerate(seq)}
    assert sorted(by_id) == sorted(b.obs[:, 0].astype(int).tolist())
    for k in range(len(slots)):
        e, i = by_id[int(b.obs[k, 0])]
        R, term, last_id, m = _reference_nstep(kept[e], i, n_step, gamma)
        assert b.rewards[k] == pytest.approx(R, rel=1e-5, abs=1e-6)
        assert bool(b.terminated[k]) == term
        assert b.n_used[k] == m
        assert b.discounts[k] == pytest.approx(gamma ** m, rel=1e-6)
        assert b.next_obs[k, 0] == -(last_id + 1)


def test_invalid_rows_are_not_stored_and_sampling_is_uniform() -> None:
    buf = ReplayBuffer(100, 2, (1,), seed=3)
    valid = np.array([True, False])
    for t in range(10):
        buf.add(np.full((2, 1), t), np.zeros(2), np.zeros(2), np.zeros((2, 1)),
                np.zeros(2, bool), np.zeros(2, bool), valid if t < 4 else None)
    assert buf.size == 10 + 6
    assert buf.count.tolist() == [10, 6]
    slots = buf.sample_slots(32_000)
    counts = np.bincount(slots, minlength=buf.capacity)[buf.valid_slots_mask()]
    assert len(counts) == 16
    # chi-square goodness of fit to uniform over the 16 stored transitions (fixed seed)
    assert stats.chisquare(counts).pvalue > 1e-3
    assert counts.sum() == 32_000


def test_one_environment_samples_its_stored_rows_uniformly() -> None:
    buf = ReplayBuffer(20, 1, (1,), seed=4)
    for t in range(30):  # 26 stored (t % 7 == 3 is an invalid row): the ring wrapped
        buf.add(np.full((1, 1), t), np.zeros(1), np.zeros(1), np.zeros((1, 1)),
                np.zeros(1, bool), np.zeros(1, bool), np.array([t % 7 != 3]))
    assert buf.size == 20 and buf.ptr[0] == 26 - 20
    counts = np.bincount(buf.sample_slots(20_000), minlength=20)
    assert stats.chisquare(counts).pvalue > 1e-3


def test_add_rejects_wrong_batch() -> None:
    buf = ReplayBuffer(10, 2, (1,))
    with pytest.raises(ValueError, match="n_envs=2"):
        buf.add(np.zeros((3, 1)), np.zeros(3), np.zeros(3), np.zeros((3, 1)),
                np.zeros(3, bool), np.zeros(3, bool))
    with pytest.raises(ValueError, match="empty"):
        buf.sample(4)


def _filled_per(n: int = 50, alpha: float = 0.7, **kw) -> PrioritizedReplayBuffer:
    per = PrioritizedReplayBuffer(ReplayBuffer(n, 1, (1,), seed=5), alpha=alpha, beta=0.5, **kw)
    for t in range(n):
        per.add(np.full((1, 1), t), np.zeros(1), np.zeros(1), np.zeros((1, 1)),
                np.zeros(1, bool), np.zeros(1, bool))
    return per


def test_new_transitions_get_max_priority() -> None:
    per = _filled_per(10)
    np.testing.assert_allclose(per.p[:10], 1.0)
    per.update_priorities(np.array([2, 3]), np.array([4.0, -0.5]))
    assert per.p[2] == pytest.approx(4.0 + per.eps) and per.p[3] == pytest.approx(0.5 + per.eps)
    assert per.max_p == pytest.approx(4.0 + per.eps)


def test_prioritised_sampling_frequencies_match_priorities() -> None:
    per = _filled_per(50, alpha=0.7)
    rng = np.random.default_rng(0)
    td = rng.exponential(1.0, 50)
    per.update_priorities(np.arange(50), td)
    p = (td + per.eps) ** 0.7
    P = p / p.sum()
    np.testing.assert_allclose(per.probabilities(np.arange(50)), P, rtol=1e-10)
    draws = np.concatenate([per.sample_slots(256) for _ in range(400)])
    counts = np.bincount(draws, minlength=50)
    # chi-square goodness of fit, fixed seed; stratified sampling only lowers the variance
    assert stats.chisquare(counts, P * counts.sum()).pvalue > 1e-3


def test_importance_weights_match_the_formula() -> None:
    per = _filled_per(40, alpha=0.6)
    td = np.linspace(0.1, 3.0, 40)
    per.update_priorities(np.arange(40), td)
    per.set_beta(0.4)
    slots = np.array([0, 5, 39, 20, 5])
    p = (td + per.eps) ** 0.6
    P = p / p.sum()
    N = 40
    w = (N * P[slots]) ** -0.4
    np.testing.assert_allclose(per.weights(slots), w / w.max(), rtol=1e-10)
    b = per.sample(64, 0.99, 1)
    wb = (N * P[b.slots]) ** -0.4
    np.testing.assert_allclose(b.weights, (wb / wb.max()).astype(np.float32), rtol=1e-5)
    assert b.weights.max() == pytest.approx(1.0)
    # one near-zero priority elsewhere in the buffer does not shrink this batch's weights
    per.update_priorities(np.array([30]), np.array([0.0]))
    np.testing.assert_allclose(per.weights(np.array([0, 5])).max(), 1.0)


def test_alpha_change_rebuilds_tree_from_stored_priorities() -> None:
    per = _filled_per(30, alpha=0.5)
    td = np.arange(30) / 10.0
    per.update_priorities(np.arange(30), td)
    per.set_alpha(1.0)
    np.testing.assert_allclose(per.sum_tree.leaves()[:30], td + per.eps)
    assert per.sum_tree.total == pytest.approx((td + per.eps).sum())
    per.set_alpha(0.0)  # uniform
    np.testing.assert_allclose(per.probabilities(np.arange(30)), 1 / 30)
    with pytest.raises(ValueError, match="per_alpha"):
        per.set_alpha(1.5)
    with pytest.raises(ValueError, match="per_eps"):
        per.set_eps(0.0)


def test_recency_mixture_frequencies_and_weights() -> None:
    per = _filled_per(60, alpha=1.0, recent_frac=0.5, recent_window=10)
    td = np.ones(60)
    td[:5] = 9.0
    per.update_priorities(np.arange(60), td)
    P = per.probabilities(np.arange(60))
    assert P.sum() == pytest.approx(1.0)
    # newest 10 transitions (slots 50..59) get the extra 0.5 / 10
    p = td + per.eps
    expect = 0.5 * p / p.sum() + 0.5 * (np.arange(60) >= 50) / 10
    np.testing.assert_allclose(P, expect, rtol=1e-10)
    draws = np.concatenate([per.sample_slots(128) for _ in range(300)])
    counts = np.bincount(draws, minlength=60)
    assert stats.chisquare(counts, P * counts.sum()).pvalue > 1e-3
    assert per.weights(np.arange(60)).max() <= 1.0 + 1e-12


def test_worked_weights_from_docs() -> None:
    """docs/algorithms/dqn.md: p = (1, 4, 9, 16), alpha 0.5, beta 0.5."""
    per = _filled_per(4, alpha=0.5)
    per.set_eps(1e-9)
    per.update_priorities(np.arange(4), np.array([1.0, 4.0, 9.0, 16.0]) - 1e-9)
    np.testing.assert_allclose(per.probabilities(np.arange(4)), [0.1, 0.2, 0.3, 0.4])
    per.set_beta(0.5)
    np.testing.assert_allclose(per.weights(np.arange(4)), [1.0, 0.70710678, 0.57735027, 0.5],
                               rtol=1e-7)


def test_worked_nstep_from_docs() -> None:
    """Rewards (1, 2, 3), gamma 0.5, n 3, step 1 truncated (then terminated)."""
    for term1 in (False, True):
        buf = ReplayBuffer(10, 1, (1,))
        for t, r in enumerate((1.0, 2.0, 3.0)):
            end = t == 1
            buf.add(np.full((1, 1), t), np.zeros(1), np.array([r]), np.full((1, 1), 10 + t),
                    np.array([end and term1]), np.array([end and not term1]))
        b = buf.gather(np.array([0]), 0.5, 3, np.ones(1, np.float32))
        assert b.rewards[0] == 2.0 and b.n_used[0] == 2 and b.discounts[0] == 0.25
        assert b.next_obs[0, 0] == 11 and b.terminated[0] == float(term1)


def test_tree_updated_late_answers_as_one_updated_at_every_store() -> None:
    """Stored transitions reach the sum tree when it is next read (one vectorised update), so
    a buffer that stores, samples and reprioritises in any order reads the same tree as one
    rebuilt from the stored priorities, including a ring that wrapped between reads."""
    rng = np.random.default_rng(3)
    per = PrioritizedReplayBuffer(ReplayBuffer(40, 2, (1,), seed=1), alpha=0.6, beta=0.4)
    for t in range(300):
        per.add(np.full((2, 1), t), np.zeros(2), np.zeros(2), np.zeros((2, 1)),
                np.zeros(2, bool), np.zeros(2, bool), rng.random(2) < 0.9)
        if t % 37 == 36:
            slots = per.sample(8).slots
            per.update_priorities(slots, rng.exponential(1.0, 8))
        if t % 50 == 49:
            stored = per.buffer.valid_slots_mask()
            expect = np.where(stored, per.p ** 0.6, 0.0)
            np.testing.assert_allclose(per.sum_tree.leaves(), expect, rtol=1e-12)
            assert per.sum_tree.total == pytest.approx(expect.sum(), rel=1e-12)
