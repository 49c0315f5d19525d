"""Deterministic evaluation of an agent on a vector environment."""

from __future__ import annotations

import numpy as np

from rlcore.envs import EnvBundle

__all__ = ["evaluate_agent"]


def evaluate_agent(agent, bundle: EnvBundle, episodes: int, seed: int,
                   deterministic: bool = True, max_steps: int = 10_000_000) -> dict[str, float]:
    """Run ``episodes`` whole episodes and return mean/std of the raw (unnormalised) returns.

    Each of the N environments runs ``ceil(episodes / N)`` episodes and the first ``episodes``
    in environment order are kept, so short episodes are not over-represented (a plain "first
    ``episodes`` to finish" count would favour them).
    """
    env = bundle.env
    n = env.num_envs
    per_env = -(-episodes // n)
    returns: list[list[float]] = [[] for _ in range(n)]
    lengths: list[list[int]] = [[] for _ in range(n)]
    obs, _ = env.reset(seed=seed)
    state = agent.initial_state(n)
    episode_start = np.ones(n, bool)
    autoreset = np.zeros(n, bool)
    steps = 0
    while min(len(r) for r in returns) < per_env and steps < max_steps:
        res = agent.act(obs, state, episode_start, deterministic=deterministic)
        obs, _, term, trunc, info = env.step(res.actions)
        state = res.state
        episode_start = autoreset
        autoreset = np.logical_or(term, trunc)
        steps += n
        if "episode" in info:
            for i in np.nonzero(info["_episode"])[0]:
                if len(returns[i]) < per_env:
                    returns[i].append(float(info["episode"]["r"][i]))
                    lengths[i].append(int(info["episode"]["l"][i]))
    flat = [r for per in returns for r in per][:episodes]
    flat_len = [x for per in lengths for x in per][:episodes]
    if not flat:
        return {"eval_return_mean": float("nan"), "eval_return_std": float("nan"),
                "eval_length_mean": float("nan"), "eval_episodes": 0}
    return {"eval_return_mean": float(np.mean(flat)), "eval_return_std": float(np.std(flat)),
            "eval_length_mean": float(np.mean(flat_len)), "eval_episodes": len(flat)}
