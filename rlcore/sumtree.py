"""A vectorised sum tree over a fixed number of leaves (docs/algorithms/dqn.md, eqs. (7)-(8)).

The tree is one flat float64 array of ``2 * L`` nodes, ``L`` the capacity rounded up to a power of
two. Node 1 is the root, node ``i`` has children ``2i`` and ``2i + 1``, leaf ``j`` sits at node
``L + j``; seen as rows of two (``nodes.reshape(-1, 2)``), row ``j`` holds node ``j``'s two
children. Every operation works on a whole batch of leaves at once: an update writes the leaves
and then recomputes their ancestors one level at a time (``log2 L`` levels of a few numpy
operations, both children read with one gather; no Python loop over items); sampling descends
all queries together, one level per step.
"""

from __future__ import annotations

import numpy as np

__all__ = ["SumTree"]


def _leaves(capacity: int) -> int:
    if not isinstance(capacity, (int, np.integer)) or capacity < 1:
        raise ValueError(f"tree capacity: expected a positive integer, got {capacity!r}")
    return 1 << int(np.ceil(np.log2(capacity))) if capacity > 1 else 1


class _Tree:
    """Storage and batch propagation of a binary tree; ``_combine`` is the node operation."""

    _fill = 0.0

    def __init__(self, capacity: int):
        self.capacity = int(capacity)
        self.n_leaves = _leaves(capacity)
        self.depth = int(np.log2(self.n_leaves))
        self.nodes = np.full(2 * self.n_leaves, self._fill, dtype=np.float64)

    def _combine(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _index(self, idx: np.ndarray | int) -> np.ndarray:
        idx = np.asarray(idx, dtype=np.int64).reshape(-1)
        if idx.size and (idx.min() < 0 or idx.max() >= self.capacity):
            raise IndexError(f"tree index out of range [0, {self.capacity}): "
                             f"{idx[(idx < 0) | (idx >= self.capacity)][:5].tolist()}")
        return idx

    # --8<-- [start:update]
    def update(self, idx: np.ndarray | int, values: np.ndarray | float) -> None:
        """Set leaves ``idx`` to ``values`` and refresh their ancestors (duplicates: last wins)."""
        idx = self._index(idx)
        vals = np.broadcast_to(np.asarray(values, dtype=np.float64), idx.shape)
        if not np.all(np.isfinite(vals)):
            raise ValueError("tree update: values must be finite")
        node = idx + self.n_leaves
        self.nodes[node] = vals
        pairs = self.nodes.reshape(-1, 2)  # row j: the children 2j and 2j + 1 of node j
        for _ in range(self.depth):
            node >>= 1
            children = pairs.take(node, axis=0)  # one gather per level for both children
            self.nodes[node] = self._combine(children[:, 0], children[:, 1])
    # --8<-- [end:update]

    def set_all(self, values: np.ndarray) -> None:
        """Replace the first ``len(values)`` leaves (the rest: neutral value); O(L) rebuild."""
        values = np.asarray(values, dtype=np.float64).reshape(-1)
        if values.size > self.capacity:
            raise ValueError(f"set_all: {values.size} values for capacity {self.capacity}")
        leaves = self.nodes[self.n_leaves:]
        leaves[:] = self._fill
        leaves[: values.size] = values
        lo = self.n_leaves
        while lo > 1:
            hi, lo = lo, lo >> 1
            self.nodes[lo:hi] = self._combine(self.nodes[2 * lo : 2 * hi : 2],
                                              self.nodes[2 * lo + 1 : 2 * hi : 2])

    def get(self, idx: np.ndarray | int) -> np.ndarray:
        """Leaf values at ``idx``."""
        return self.nodes[self._index(idx) + self.n_leaves]

    def leaves(self) -> np.ndarray:
        """View of all ``capacity`` leaves."""
        return self.nodes[self.n_leaves : self.n_leaves + self.capacity]


class SumTree(_Tree):
    """Every node holds the sum of its two children; the root is the total of all leaves."""

    _fill = 0.0

    def _combine(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return a + b

    @property
    def total(self) -> float:
        """Sum of all leaves (docs/algorithms/dqn.md, eq. (7))."""
        return float(self.nodes[1])

    # --8<-- [start:find]
    def find(self, values: np.ndarray) -> np.ndarray:
        """For each query v in [0, total), the leaf i with prefix(i) <= v < prefix(i + 1).

        prefix(i) is the sum of leaves 0..i-1 (docs/algorithms/dqn.md, eq. (8)). At each node the
        query goes left when v < sum(left subtree), else right with v reduced by that sum. Float
        rounding (a query at the total, or a child's sum a hair below its parent's share) can
        send a query right into a subtree of sum 0; such a walk ends on a leaf of priority 0, and
        only those queries walk again, never entering an empty subtree: a zero-priority leaf is
        never returned, and every other query takes the same path either way.
        """
        v = np.asarray(values, dtype=np.float64).reshape(-1)
        if self.nodes[1] <= 0:
            raise ValueError("SumTree.find: the tree is empty (total priority 0)")
        leaf = self._walk(v.copy(), guarded=False)
        empty = self.nodes[leaf + self.n_leaves] <= 0
        if empty.any():
            leaf[empty] = self._walk(v[empty], guarded=True)
        return leaf

    def _walk(self, v: np.ndarray, guarded: bool) -> np.ndarray:
        """Descend from the root for every query in ``v`` (changed in place); ``guarded``:
        never into a child of sum 0."""
        node = np.ones(v.shape, dtype=np.int64)
        pairs = self.nodes.reshape(-1, 2)  # row j: the children 2j and 2j + 1 of node j
        for _ in range(self.depth):
            children = pairs.take(node, axis=0)  # one gather per level for both children
            lsum = children[:, 0]
            right = v >= lsum  # v >= 0 throughout, so an empty left child sends it right
            if guarded:
                right &= children[:, 1] > 0
                right |= lsum <= 0
            np.subtract(v, lsum, out=v, where=right)
            node += node
            node += right
        return node - self.n_leaves
    # --8<-- [end:find]
