"""Sum tree against naive numpy arrays (docs/algorithms/dqn.md, eqs. (7)-(8))."""

from __future__ import annotations

import numpy as np
import pytest

from rlcore.sumtree import SumTree


def _check_internal(tree: SumTree, op) -> None:
    """Every internal node equals op(children)."""
    L = tree.n_leaves
    nodes = tree.nodes
    for i in range(1, L):
        assert nodes[i] == pytest.approx(op(nodes[2 * i], nodes[2 * i + 1]), rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("capacity", [7, 1000])
def test_sum_tree_matches_naive_over_random_updates(capacity: int) -> None:
    rng = np.random.default_rng(capacity)
    st = SumTree(capacity)
    naive = np.zeros(capacity)
    for it in range(1200):
        k = int(rng.integers(1, 40))
        idx = rng.integers(0, capacity, size=k)
        vals = rng.exponential(1.0, size=k) * (rng.random(k) > 0.1)  # some zeros
        # duplicates: the last write wins in both
        st.update(idx, vals)
        naive[idx] = vals
        assert st.total == pytest.approx(naive.sum(), rel=1e-9)
        if it % 100 == 0:
            np.testing.assert_array_equal(st.leaves(), naive)
            np.testing.assert_array_equal(st.get(np.arange(capacity)), naive)
            _check_internal(st, lambda a, b: a + b)
            # prefix-sum property: find(v) = i with cumsum[i-1] <= v < cumsum[i]
            q = rng.random(500) * naive.sum()
            expect = np.searchsorted(np.cumsum(naive), q, side="right")
            got = st.find(q)
            np.testing.assert_array_equal(got, expect)
            assert np.all(naive[got] > 0)


def test_find_at_exact_boundaries_and_never_on_zero_leaves() -> None:
    st = SumTree(5)
    st.update(np.arange(5), np.array([1.0, 0.0, 2.0, 0.0, 3.0]))
    # prefix sums 0, 1, 1, 3, 3, 6: v in [0,1) -> 0, [1,3) -> 2, [3,6) -> 4
    np.testing.assert_array_equal(st.find(np.array([0.0, 0.999, 1.0, 2.5, 3.0, 5.999999])),
                                  [0, 0, 2, 2, 4, 4])
    # a query at (or by rounding beyond) the total never lands on an empty leaf
    assert st.find(np.array([6.0, 7.0]))[0] == 4
    assert st.find(np.array([7.0]))[0] == 4


def test_set_all_equals_incremental_updates() -> None:
    rng = np.random.default_rng(0)
    vals = rng.random(300)
    a, b = SumTree(300), SumTree(300)
    a.set_all(vals)
    b.update(np.arange(300), vals)
    np.testing.assert_allclose(a.nodes, b.nodes, rtol=1e-12)
    a.set_all(vals[:100])
    assert a.total == pytest.approx(vals[:100].sum()) and a.get(200)[0] == 0.0


def test_bad_input_is_rejected() -> None:
    st = SumTree(4)
    with pytest.raises(IndexError, match="out of range"):
        st.update(np.array([4]), np.array([1.0]))
    with pytest.raises(ValueError, match="finite"):
        st.update(np.array([0]), np.array([np.nan]))
    with pytest.raises(ValueError, match="empty"):
        st.find(np.array([0.0]))
    with pytest.raises(ValueError, match="positive integer"):
        SumTree(0)


def test_worked_example_from_docs() -> None:
    """docs/algorithms/dqn.md, 'The sum tree': leaves (1, 3, 2, 4)."""
    st = SumTree(4)
    st.update(np.arange(4), np.array([1.0, 3.0, 2.0, 4.0]))
    assert st.nodes[1:].tolist() == [10.0, 4.0, 6.0, 1.0, 3.0, 2.0, 4.0]
    assert st.find(np.array([5.5]))[0] == 2
    st.update(np.array([1]), np.array([0.5]))
    assert (st.nodes[5], st.nodes[2], st.total) == (0.5, 1.5, 7.5)


def test_find_takes_the_guarded_walks_path_for_every_query() -> None:
    """find walks unguarded and walks again, guarded, only the queries that ended on an empty
    leaf: the same leaves as the guarded walk for every query, on trees with many zero leaves
    and queries on every prefix boundary, at the total and a hair below it."""
    rng = np.random.default_rng(7)
    for capacity, whole in [(5, True), (64, True), (1000, False), (100_000, False)]:
        st = SumTree(capacity)
        # whole numbers sum exactly, so a query at the total sends the unguarded walk into the
        # empty last leaves
        vals = (rng.integers(0, 3, capacity).astype(float) if whole
                else rng.exponential(1.0, capacity) * (rng.random(capacity) > 0.5))
        vals[-1] = 0.0
        st.update(np.arange(capacity), vals)
        cums = np.cumsum(vals)
        q = np.concatenate([rng.random(2000) * st.total, cums[:2000], [st.total],
                            [np.nextafter(st.total, 0)], np.zeros(3)])
        got = st.find(q)
        np.testing.assert_array_equal(got, st._walk(q.copy(), guarded=True))
        assert np.all(vals[got] > 0)
        if whole:  # the second, guarded walk was needed and taken
            assert (st.nodes[st._walk(q.copy(), guarded=False) + st.n_leaves] == 0).any()
