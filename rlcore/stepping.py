"""Stepping N environments for an agent: the one helper behind training, evaluation and the
online loop.

gymnasium's NEXT_STEP autoreset (``rlcore/envs.py``) means that when environment i ends at step
t, step t+1 only resets it and ignores its action. :class:`VectorStepper` keeps the three pieces
of bookkeeping that follow from it — the current observations, the recurrent state, and which
environments start an episode or are being reset — so no caller writes them again.

Episode metrics. Besides the raw return, an environment may report figures of each finished
episode in ``info["episode_metrics"]`` (a dict of per-environment arrays, valid where
``info["_episode_metrics"]`` is True: gymnasium's vector-info convention) and name their units in
``metadata["episode_metric_units"]`` (a trading market reports final equity, return in %, max
drawdown, fees ...). The engine logs, averages and prints them without knowing what they mean.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from gymnasium.vector import VectorEnv

from rlcore.agent import Transition

__all__ = ["VectorStepper", "Episode", "finished_episodes", "evaluate_agent", "metric_units"]


@dataclass
class Episode:
    """One finished episode: its environment, raw return, length and the environment's metrics."""

    env: int
    ret: float
    length: int
    metrics: dict[str, float] = field(default_factory=dict)


def finished_episodes(info: dict[str, Any]) -> list[Episode]:
    """The episodes that ended in this step (gymnasium's RecordEpisodeStatistics
    ``info["episode"]``), with the environment's ``info["episode_metrics"]`` where it has them."""
    if "_episode" not in info:
        return []
    ep, em = info["episode"], info.get("episode_metrics")
    mask = info.get("_episode_metrics")
    out = []
    for i in np.nonzero(info["_episode"])[0]:
        metrics = {}
        if em is not None and (mask is None or bool(np.asarray(mask)[i])):
            metrics = {k: float(np.asarray(v)[i]) for k, v in em.items() if not k.startswith("_")}
        out.append(Episode(int(i), float(ep["r"][i]), int(ep["l"][i]), metrics))
    return out


def metric_units(env: VectorEnv) -> dict[str, str]:
    """The units the environment gives its episode metrics (empty when it reports none)."""
    return dict(env.metadata.get("episode_metric_units", {}))


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
    """Run ``episodes`` whole episodes and return mean/std of the raw (unnormalised) returns,
    and the mean of each episode metric the environment reports (``eval_metrics``).

    Each of the N environments runs ``ceil(episodes / N)`` episodes and the first ``episodes``
    in environment order are kept, so short episodes are not over-represented (a plain "first
    ``episodes`` to finish" count would favour them).
    """
    stepper = VectorStepper(env)
    n = stepper.n
    per_env = -(-episodes // n)
    done: list[list[Episode]] = [[] for _ in range(n)]
    stepper.reset(agent, seed=seed)
    steps = 0
    while min(len(d) for d in done) < per_env and steps < max_steps:
        _, info = stepper.step(agent, deterministic=deterministic)
        steps += n
        for e in finished_episodes(info):
            if len(done[e.env]) < per_env:
                done[e.env].append(e)
    flat = [e for per in done for e in per][:episodes]
    if not flat:
        return {"eval_return_mean": float("nan"), "eval_return_std": float("nan"),
                "eval_length_mean": float("nan"), "eval_episodes": 0}
    returns = [e.ret for e in flat]
    out: dict[str, Any] = {"eval_return_mean": float(np.mean(returns)),
                           "eval_return_std": float(np.std(returns)),
                           "eval_length_mean": float(np.mean([e.length for e in flat])),
                           "eval_episodes": len(flat)}
    names = [k for k in flat[0].metrics if all(k in e.metrics for e in flat)]
    if names:  # each metric's mean over the evaluation episodes, and its unit
        out["eval_metrics"] = {k: float(np.mean([e.metrics[k] for e in flat])) for k in names}
        out["eval_metric_units"] = metric_units(env)
    return out
