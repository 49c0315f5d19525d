"""Deterministic evaluation of an agent on one data window: the hold-out of an online tick.

Episodes start every ``stride`` bars from the window's first bar with full feature history and
run ``episode_length`` bars (or to the window's end), so every agent is scored on exactly the
same bars (docs/guide/continual-learning.md, eq. (8)).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import pandas as pd
from gymnasium.vector import AutoresetMode, SyncVectorEnv, VectorEnv
from gymnasium.wrappers.vector import TransformObservation

from rlcore.config import agent_class
from rlcore.envs import env_kwargs_for, resolve_env_id
from rlcore.stepping import VectorStepper

__all__ = ["window_env_kwargs", "make_single_env", "start_bounds", "evaluate_window"]


def window_env_kwargs(env_id: str, algo: str, kwargs: dict[str, Any],
                      episode_length: int) -> dict[str, Any]:
    """The run's env kwargs with the online episode length (and the action type the runner
    picks, :func:`rlcore.envs.env_kwargs_for`); ``data`` is set per window."""
    out = {k: v for k, v in kwargs.items() if k != "data"}
    out = env_kwargs_for(env_id, out, agent_class(algo).action_types)
    out["episode_length"] = int(episode_length)
    return out


def make_single_env(env_id: str, kwargs: dict[str, Any], data: pd.DataFrame | None) -> gym.Env:
    """One (unvectorised) environment on ``data``."""
    env_id, _ = resolve_env_id(env_id)
    kw = dict(kwargs)
    if data is not None:
        kw["data"] = data
    return gym.make(env_id, disable_env_checker=True, **kw)


def start_bounds(env: gym.Env, env_id: str) -> tuple[int, int]:
    """First and last bar an episode of ``env`` may start at on its data window.

    A windowed environment says so itself through ``start_bounds()`` (the futures and toy envs
    do): the first bar with full feature history, the last with one bar after it.
    """
    method = getattr(env.unwrapped, "start_bounds", None)
    if method is None:
        raise TypeError(f"{env_id}: cannot be evaluated on a data window (its environment has no "
                        "start_bounds() method giving the first and last start bar)")
    first, last = method()
    return int(first), int(last)


def _normalise(obs: np.ndarray, norm: dict[str, Any]) -> np.ndarray:
    """gymnasium NormalizeObservation with frozen statistics: (o - mean) / sqrt(var + 1e-8)."""
    if "obs" not in norm:
        return obs
    return ((obs - norm["obs"]["mean"]) / np.sqrt(norm["obs"]["var"] + 1e-8)).astype(np.float32)


def evaluate_window(agent: Any, env_id: str, kwargs: dict[str, Any], data: pd.DataFrame,
                    episode_length: int, norm: dict[str, Any] | None = None,
                    stride: int | None = None) -> dict[str, float]:
    """Mean, std and count of deterministic episode returns on ``data``, plus the total.

    The episodes are stepped by :class:`rlcore.stepping.VectorStepper`, the helper training and
    evaluation use, over a one-environment vector env started at each episode's bar.
    """
    env = make_single_env(env_id, {**kwargs, "episode_length": int(episode_length)}, data)
    norm = norm or {}
    venv: VectorEnv = SyncVectorEnv([lambda: env], autoreset_mode=AutoresetMode.NEXT_STEP)
    if "obs" in norm:
        venv = TransformObservation(venv, lambda obs: _normalise(obs, norm))
    try:
        first, last = start_bounds(env, env_id)
        stride = int(stride or episode_length)
        stepper = VectorStepper(venv)
        returns = []
        for start in range(first, last + 1, stride):
            stepper.reset(agent, options={"start": start})
            total, done = 0.0, False
            while not done:
                tr, _ = stepper.step(agent, deterministic=True)
                total += float(tr.rewards[0])
                done = bool(tr.terminated[0] or tr.truncated[0])
            returns.append(total)
    finally:
        venv.close()
    if not returns:
        return {"return_mean": float("nan"), "return_std": float("nan"), "episodes": 0,
                "return_total": float("nan")}
    return {"return_mean": float(np.mean(returns)), "return_std": float(np.std(returns)),
            "episodes": len(returns), "return_total": float(np.sum(returns))}
