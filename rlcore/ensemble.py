"""Blend two or more trained agents into one acting agent: the source document's
``a*PPO + (1-a)*SAC`` signal (docs/guide/evaluation.md, "Ensembles").

The blend weights are mutable hyperparameters behind :mod:`rlcore.hparams` (the control file
can change them mid-run): ``a`` in [0, 1] for two members (weights a, 1 - a), otherwise
``w0, w1, ...`` >= 0, normalised to sum 1 when acting.

Continuous actions: x = sum_i w_i x_i / sum_i w_i (eq. (14)); with weights (1, 0) the result is
the first member's action exactly (1.0 * x1 + 0.0 * x2 == x1 in floating point).
Discrete actions: a weighted vote; the action with the largest summed weight of the members
choosing it wins, ties go to the action of the lowest-numbered member among the tied (the
members' probabilities are not part of the Agent protocol, so they are not blended).

The ensemble acts only: :meth:`Ensemble.observe` and :meth:`Ensemble.update` raise
:class:`EnsembleError` (train the members, then blend them).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from rlcore.agent import ActResult, Transition
from rlcore.hparams import HParamSpec, LiveHParams, make_hparams

__all__ = ["Ensemble", "EnsembleConfig", "EnsembleError"]

ObsFn = Callable[[np.ndarray], np.ndarray]


class EnsembleError(RuntimeError):
    """An operation the acting-only ensemble does not support, or a bad ensemble setup."""


@dataclass(frozen=True)
class EnsembleConfig:
    """Initial blend weights (one per member)."""

    weights: tuple[float, ...] = (0.5, 0.5)
    """Weight of each member; for two members ``a = weights[0] / sum(weights)``."""


def _specs(n: int) -> list[HParamSpec]:
    if n == 2:
        return [HParamSpec("a", float, 0.0, 1.0, "weight of the first agent (second: 1 - a)")]
    return [HParamSpec(f"w{i}", float, 0.0, None, f"weight of agent {i}") for i in range(n)]


class Ensemble(LiveHParams):
    """An Agent (acting side) over ``members`` with mutable blend weights.

    Args:
        members: two or more agents with the same action space.
        weights: one non-negative weight per member (default equal weights).
        obs_transforms: optional per-member functions applied to the observation before that
            member acts (each member's own observation normaliser, say).
    """

    name = "ensemble"
    on_policy = False
    action_types = ("continuous",)

    def __init__(self, members: Sequence[Any], weights: Sequence[float] | None = None,
                 obs_transforms: Sequence[ObsFn | None] | None = None):
        if len(members) < 2:
            raise EnsembleError(f"members: expected two or more agents, got {len(members)}")
        self.members = list(members)
        n = len(self.members)
        w = tuple(float(x) for x in (weights if weights is not None else [1.0] * n))
        if len(w) != n:
            raise EnsembleError(f"weights: expected {n} values (one per member), got {len(w)}")
        if any(not np.isfinite(x) or x < 0 for x in w) or sum(w) <= 0:
            raise EnsembleError(f"weights: expected finite values >= 0 with a positive sum, "
                                f"got {w}")
        self.obs_transforms = list(obs_transforms) if obs_transforms is not None else [None] * n
        if len(self.obs_transforms) != n:
            raise EnsembleError(f"obs_transforms: expected {n} entries, got "
                                f"{len(self.obs_transforms)}")
        self.config = EnsembleConfig(w)
        init = {"a": w[0] / sum(w)} if n == 2 else {f"w{i}": x for i, x in enumerate(w)}
        self.hp = make_hparams(_specs(n), type("_Init", (), init)(), 0)

    @classmethod
    def hparam_specs(cls, config: EnsembleConfig) -> list[HParamSpec]:
        """The blend weights: ``a`` for two members, ``w0..`` for more."""
        return _specs(len(config.weights))

    # -- weights -------------------------------------------------------------------------------
    def weights(self) -> np.ndarray:
        """Current normalised weights (sum 1); EnsembleError if they are all 0."""
        v = self.hp.values()
        if len(self.members) == 2:
            return np.array([v["a"], 1.0 - v["a"]])
        w = np.array([v[f"w{i}"] for i in range(len(self.members))], dtype=np.float64)
        total = w.sum()
        if total <= 0:
            raise EnsembleError("weights w0..: all are 0; at least one must be > 0")
        return w / total

    # -- acting --------------------------------------------------------------------------------
    def initial_state(self, n_envs: int) -> tuple[Any, ...]:
        """A tuple of each member's initial state."""
        return tuple(m.initial_state(n_envs) for m in self.members)

    # --8<-- [start:act]
    def act(self, obs: np.ndarray, state: Any = None, episode_start: np.ndarray | None = None,
            deterministic: bool = False) -> ActResult:
        """Every member acts on its view of ``obs``; the actions are blended (module doc)."""
        states = state if state is not None else (None,) * len(self.members)
        acts, new_states = [], []
        for m, fn, st in zip(self.members, self.obs_transforms, states):
            o = fn(obs) if fn is not None else obs
            r = m.act(o, st, episode_start, deterministic=deterministic)
            acts.append(np.asarray(r.actions))
            new_states.append(r.state)
        w = self.weights()
        if np.issubdtype(acts[0].dtype, np.integer):
            out = _vote(acts, w)
        else:
            # docs/guide/evaluation.md, eq. (14)
            out = acts[0] * w[0]
            for x, wi in zip(acts[1:], w[1:]):
                out = out + x * wi
            out = out.astype(acts[0].dtype, copy=False)
        return ActResult(out, tuple(new_states), {f"member{i}_actions": a
                                                  for i, a in enumerate(acts)})
    # --8<-- [end:act]

    def observe(self, transition: Transition) -> bool:
        """Not supported: the ensemble does not learn (EnsembleError)."""
        raise EnsembleError("Ensemble.observe: the ensemble only acts; train its members")

    def update(self) -> dict[str, float]:
        """Not supported: the ensemble does not learn (EnsembleError)."""
        raise EnsembleError("Ensemble.update: the ensemble only acts; train its members")

    # -- hyperparameters -----------------------------------------------------------------------
    # -- persistence ---------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Weights and every member's state dict."""
        return {"hparams": self.hp.state_dict(),
                "members": [m.state_dict() for m in self.members]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore weights and members from :meth:`state_dict`."""
        if len(state["members"]) != len(self.members):
            raise EnsembleError(f"state has {len(state['members'])} members, this ensemble "
                                f"{len(self.members)}")
        self.hp.load_state_dict(state["hparams"])
        for m, s in zip(self.members, state["members"]):
            m.load_state_dict(s)


def _vote(acts: list[np.ndarray], w: np.ndarray) -> np.ndarray:
    """Weighted vote over integer actions, per environment (ties: lowest member index)."""
    stack = np.stack([a.reshape(len(a), -1) for a in acts])  # (M, N, k)
    out = stack[0].copy()
    m_count, n, k = stack.shape
    for e in range(n):
        for j in range(k):
            score: dict[int, float] = {}
            for i in range(m_count):
                v = int(stack[i, e, j])
                score[v] = score.get(v, 0.0) + float(w[i])
            best = max(score.values())
            out[e, j] = next(int(stack[i, e, j]) for i in range(m_count)
                             if score[int(stack[i, e, j])] == best)
    return out.reshape(acts[0].shape)
