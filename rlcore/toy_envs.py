"""Small test environments for the engine's tests and benchmarks.

``rlcore/CartPoleNoVel-v1`` is gymnasium's CartPole-v1 with the two velocity components removed
from the observation: it sees only the cart position and the pole angle, so a feed-forward policy
cannot tell which way the pole is moving, while a recurrent policy can infer it from the last
observations (docs/networks.md, "Why an LSTM"). Importing this module registers it; registering
again is a no-op.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

__all__ = ["CARTPOLE_NOVEL_ID", "NoVelocityObservation", "make_cartpole_novel", "register_toy_envs"]

CARTPOLE_NOVEL_ID = "rlcore/CartPoleNoVel-v1"
"""Registered id of CartPole without velocity observations."""

_KEEP = (0, 2)  # CartPole observation: (x, x_dot, theta, theta_dot); keep x and theta


class NoVelocityObservation(gym.ObservationWrapper):
    """Keep the position components (x, theta) of CartPole's (x, x_dot, theta, theta_dot)."""

    def __init__(self, env: gym.Env):
        super().__init__(env)
        space = env.observation_space
        if not isinstance(space, gym.spaces.Box) or space.shape != (4,):
            raise ValueError(f"NoVelocityObservation: expected CartPole's Box(4,) observation "
                             f"space, got {space}")
        idx = list(_KEEP)
        self.observation_space = gym.spaces.Box(space.low[idx], space.high[idx],
                                                dtype=space.dtype)

    def observation(self, observation: np.ndarray) -> np.ndarray:
        """The observation without its velocity components."""
        return observation[list(_KEEP)]


def make_cartpole_novel(**kwargs: Any) -> gym.Env:
    """CartPole-v1 (500-step time limit) seen through :class:`NoVelocityObservation`."""
    return NoVelocityObservation(gym.make("CartPole-v1", **kwargs))


def register_toy_envs() -> None:
    """Register the toy environments; calling it again changes nothing."""
    if CARTPOLE_NOVEL_ID not in gym.registry:
        # The time limit comes from the inner CartPole-v1, so none is added here.
        gym.register(CARTPOLE_NOVEL_ID, entry_point="rlcore.toy_envs:make_cartpole_novel",
                     max_episode_steps=None, reward_threshold=475.0)


register_toy_envs()
