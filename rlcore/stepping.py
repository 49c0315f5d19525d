"""Stepping N environments for an agent: the one helper behind training, evaluation and the
online loop.

gymnasium's NEXT_STEP autoreset (``rlcore/envs.py``) means that when environment i ends at step
t, step t+1 only resets it and ignores its action. :class:`VectorStepper` keeps the three pieces
of bookkeeping that follow from it — the current observations, the recurrent state, and which
environments start an episode or are being reset — so no caller writes them again.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium.vector import VectorEnv

from rlcore.agent import Transition

__all__ = ["VectorStepper", "finished_episodes", "evaluate_agent"]


def finished_episodes(info: dict[str, Any]) -> list[tuple[int, float, int]]:
    """(env index, raw return, length) of the episodes that ended in this step
    (gymnasium's RecordEpisodeStatistics ``info["episode"]``)."""
    if "_episode" not in info:
        return []
    ep = info["episode"]
    return [(int(i), float(ep["r"][i]), int(ep["l"][i])) for i in np.nonzero(info["_episode"])[0]]


class VectorStepper:
    """Steps a vector environment with an agent and hands back :class:`Transition` objects.

    Attributes:
        obs: the observations the agent acts on next, (N, ...).
        state: the agent's recurrent state (None for feed-forward agents).
        episode_start: True where ``obs`` is the first observation of an episode.
        autoreset: True where the next step only resets the environment (its transition is
            marked ``valid = False``).
    """

    def __init__(self, env: VectorEnv):
        self.env = env
        self.n = env.num_envs
        self.obs: np.ndarray | None = None
        self.state: Any = None
        self.episode_start = np.ones(self.n, bool)
        self.autoreset = np.zeros(self.n, bool)

    def reset(self, agent: Any, seed: int | None = None,
              options: dict[str, Any] | None = None) -> np.ndarray:
        """Reset every environment and the agent's recurrent state; return the observations."""
        self.obs, _ = self.env.reset(seed=seed, options=options)
        self.state = agent.initial_state(self.n)
        self.episode_start = np.ones(self.n, bool)
        self.autoreset = np.zeros(self.n, bool)
        return self.obs

    def step(self, agent: Any, step: int = 0,
             deterministic: bool = False) -> tuple[Transition, dict[str, Any]]:
        """Act, step the environments, advance the bookkeeping; return (transition, info).

        ``step`` is the caller's clock after this vector step; it rides on the transition so an
        agent never counts steps itself.
        """
        assert self.obs is not None, "VectorStepper.step before reset"
        res = agent.act(self.obs, self.state, self.episode_start, deterministic)
        next_obs, rew, term, trunc, info = self.env.step(res.actions)
        tr = Transition(self.obs, res.actions, rew, next_obs, term, trunc, ~self.autoreset,
                        self.episode_start, self.state, res.state, res.extras, step)
        self.episode_start, self.autoreset = self.autoreset, np.logical_or(term, trunc)
        self.obs, self.state = next_obs, res.state
        return tr, info


def evaluate_agent(agent: Any, env: VectorEnv, episodes: int, seed: int,
                   deterministic: bool = True, max_steps: int = 10_000_000) -> dict[str, float]:
    """Run ``episodes`` whole episodes and return mean/std of the raw (unnormalised) returns.

    Each of the N environments runs ``ceil(episodes / N)`` episodes and the first ``episodes``
    in environment order are kept, so short episodes are not over-represented (a plain "first
    ``episodes`` to finish" count would favour them).
    """
    stepper = VectorStepper(env)
    n = stepper.n
    per_env = -(-episodes // n)
    returns: list[list[float]] = [[] for _ in range(n)]
    lengths: list[list[int]] = [[] for _ in range(n)]
    stepper.reset(agent, seed=seed)
    steps = 0
    while min(len(r) for r in returns) < per_env and steps < max_steps:
        _, info = stepper.step(agent, deterministic=deterministic)
        steps += n
        for i, r, length in finished_episodes(info):
            if len(returns[i]) < per_env:
                returns[i].append(r)
                lengths[i].append(length)
    flat = [r for per in returns for r in per][:episodes]
    flat_len = [x for per in lengths for x in per][:episodes]
    if not flat:
        return {"eval_return_mean": float("nan"), "eval_return_std": float("nan"),
                "eval_length_mean": float("nan"), "eval_episodes": 0}
    return {"eval_return_mean": float(np.mean(flat)), "eval_return_std": float(np.std(flat)),
            "eval_length_mean": float(np.mean(flat_len)), "eval_episodes": len(flat)}
