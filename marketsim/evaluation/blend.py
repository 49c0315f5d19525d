"""The seed ensemble: several trained agents, of one algorithm or of several (PPO on discrete
levels and SAC on a continuous action, say), acting as one continuous-action policy.

Each member's action is turned into the target position fraction it asks the futures
environment for (a discrete action ``k`` is the level ``discrete_levels[k]``, a continuous one
is its value), and :class:`rlcore.ensemble.Ensemble` averages the fractions (eq. (14), equal
weights unless given): the mean of the members' target positions. The blend acts in the
continuous-action environment with the members' other settings (docs/guide/evaluation.md,
"Ensembles").
"""

from __future__ import annotations

from typing import Any

import numpy as np

from marketsim.evaluation.backtest import Policy, RunPolicy
from rlcore.agent import ActResult

__all__ = ["FractionAgent", "seed_ensemble"]


class FractionAgent:
    """The acting side of an agent whose actions are reported as target fractions in [-1, 1]
    (float32, shape (N, 1)); ``levels`` maps a discrete action to its fraction (None: the
    agent's actions already are fractions)."""

    def __init__(self, agent: Any, levels: np.ndarray | None):
        self.agent = agent
        self.levels = None if levels is None else np.asarray(levels, dtype=np.float32)

    def initial_state(self, n_envs: int) -> Any:
        """The wrapped agent's initial state."""
        return self.agent.initial_state(n_envs)

    def act(self, obs: np.ndarray, state: Any = None, episode_start: np.ndarray | None = None,
            deterministic: bool = False) -> ActResult:
        """The wrapped agent acts; its actions are returned as fractions."""
        r = self.agent.act(obs, state, episode_start, deterministic=deterministic)
        a = np.asarray(r.actions)
        if self.levels is not None:
            a = self.levels[a.reshape(len(a)).astype(np.int64)]
        return ActResult(a.reshape(len(a), 1).astype(np.float32), r.state, {})


def _levels(policy: RunPolicy) -> np.ndarray | None:
    if policy.action_type != "discrete":
        return None
    from marketsim.futures.config import FuturesConfig
    from marketsim.futures.interface import discrete_levels

    kw = {k: v for k, v in policy.env_kwargs.items() if k not in ("data", "funding", "data_seed")}
    return discrete_levels(FuturesConfig.from_kwargs(**kw))


def seed_ensemble(policies: list[RunPolicy], weights: list[float] | None = None) -> Policy:
    """One continuous-action :class:`Policy` averaging the members' target fractions (eq. (14));
    the environment settings are the first member's with ``action_type="continuous"``.
    ValueError when the members stack frames differently or are fewer than two."""
    from rlcore.ensemble import Ensemble

    if len(policies) < 2:
        raise ValueError(f"ensemble: expected two or more trained agents, got {len(policies)}")
    stacks = {p.frame_stack for p in policies}
    if len(stacks) != 1:
        raise ValueError(f"ensemble: members stack different numbers of frames {sorted(stacks)}")
    members = [FractionAgent(p.agent, _levels(p)) for p in policies]
    ens = Ensemble(members, weights, [p.obs_fn for p in policies])
    kwargs = {**policies[0].env_kwargs, "action_type": "continuous"}
    return Policy(ens, policies[0].frame_stack, None, "continuous", kwargs)
