"""Building vector environments with gymnasium's vector API and wrappers.

Every vector environment here uses gymnasium's NEXT_STEP autoreset (the mode gymnasium's
``NormalizeObservation`` vector wrapper requires): when environment i ends at step t, its
observation is the real final observation, and step t+1 resets it, ignoring its action. The
runner marks that step invalid (``Transition.valid``).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv, VectorWrapper
from gymnasium.wrappers.vector import NormalizeObservation, NormalizeReward, RecordEpisodeStatistics

__all__ = ["EnvBundle", "VectorFrameStack", "make_vector_env", "resolve_env_id", "env_kwargs_for"]


def resolve_env_id(env_id: str) -> tuple[str, gym.envs.registration.EnvSpec]:
    """Find the spec of ``env_id``; returns (registered id, spec).

    gymnasium's ``module:EnvId`` form imports ``module`` (which registers ``EnvId``) first. An id
    ``ns/Name`` that is not registered yet imports the module ``ns``: a package that registers
    its own namespace on import (``marketsim/...`` ids import ``marketsim``). ``rlcore/...`` ids
    import :mod:`rlcore.toy_envs`. rlcore itself names no package that provides environments.
    """
    if ":" in env_id:
        module, _, env_id = env_id.partition(":")
        try:
            importlib.import_module(module)
        except ImportError as e:
            raise ValueError(f"--env {module}:{env_id}: cannot import {module!r}: {e}") from None
    namespace, slash, _ = env_id.partition("/")
    if slash and env_id not in gym.registry:
        module = "rlcore.toy_envs" if namespace == "rlcore" else namespace
        try:
            importlib.import_module(module)  # registers the namespace's environments
        except ModuleNotFoundError as e:
            if e.name != module:
                raise
            raise ValueError(f"--env {env_id!r}: namespace {namespace!r} is not registered and "
                             f"there is no module {module!r} that would register it") from None
    try:
        return env_id, gym.spec(env_id)
    except gym.error.Error as e:
        raise ValueError(f"--env {env_id!r}: {e}") from None


# --8<-- [start:env-kwargs-for]
def env_kwargs_for(env_id: str, kwargs: Mapping[str, Any],
                   action_types: Sequence[str]) -> dict[str, Any]:
    """``kwargs`` with the action type an agent needs filled in, where the environment offers one.

    An environment that can build either action space declares ``action_type`` among its
    registered ``kwargs`` (marketsim's environments do). Unless the user chose one, it gets the
    agent's first action type (``agent_class(algo).action_types[0]``: ``discrete`` for DQN,
    ``continuous`` for PPO, A2C and SAC). Other environments get ``kwargs`` unchanged.
    """
    out = dict(kwargs)
    _, spec = resolve_env_id(env_id)
    if "action_type" in spec.kwargs and "action_type" not in out:
        out["action_type"] = action_types[0]
    return out
# --8<-- [end:env-kwargs-for]


class VectorFrameStack(VectorWrapper):
    """Stack the last ``k`` observations of each environment along a new leading axis.

    gymnasium 1.x has no vector frame-stack wrapper. This one understands NEXT_STEP autoreset:
    an environment that was reset during a step starts a fresh stack filled with its reset
    observation (the same padding as gymnasium's ``FrameStackObservation(padding_type="reset")``).
    """

    def __init__(self, env: VectorEnv, k: int):
        super().__init__(env)
        if k < 1:
            raise ValueError(f"frame_stack: expected >= 1, got {k}")
        self.k = k
        space = env.single_observation_space
        low = np.repeat(space.low[None], k, 0)
        high = np.repeat(space.high[None], k, 0)
        self.single_observation_space = gym.spaces.Box(low, high, dtype=space.dtype)
        self.observation_space = gym.vector.utils.batch_space(self.single_observation_space,
                                                              self.num_envs)
        self._stack = np.zeros((self.num_envs, k, *space.shape), dtype=space.dtype)
        self._prev_done = np.zeros(self.num_envs, bool)

    def reset(self, *, seed=None, options=None):
        """Reset all environments and fill every stack with the reset observation."""
        obs, info = self.env.reset(seed=seed, options=options)
        self._stack[:] = obs[:, None]
        self._prev_done[:] = False
        return self._stack.copy(), info

    def step(self, actions):
        """Step, shift the stacks, and restart the stacks of environments that were reset."""
        obs, rew, term, trunc, info = self.env.step(actions)
        self._stack[:, :-1] = self._stack[:, 1:]
        self._stack[:, -1] = obs
        if self._prev_done.any():
            self._stack[self._prev_done] = obs[self._prev_done][:, None]
        self._prev_done = np.logical_or(term, trunc)
        return self._stack.copy(), rew, term, trunc, info


@dataclass
class EnvBundle:
    """A wrapped vector environment and handles on its stateful wrappers."""

    env: VectorEnv
    obs_norm: NormalizeObservation | None
    rew_norm: NormalizeReward | None

    def set_gamma(self, gamma: float) -> None:
        """Give the reward normaliser a new discount (its return accumulator uses it)."""
        if self.rew_norm is not None:
            self.rew_norm.gamma = gamma

    def norm_state(self) -> dict[str, Any]:
        """Normaliser statistics, for checkpoints."""
        out: dict[str, Any] = {}
        for key, w in (("obs", self.obs_norm), ("rew", self.rew_norm)):
            if w is not None:
                rms = w.obs_rms if key == "obs" else w.return_rms
                out[key] = {"mean": np.array(rms.mean), "var": np.array(rms.var),
                            "count": float(rms.count)}
        return out

    def load_norm_state(self, state: dict[str, Any]) -> None:
        """Restore normaliser statistics saved by :meth:`norm_state`."""
        for key, w in (("obs", self.obs_norm), ("rew", self.rew_norm)):
            if w is not None and key in state:
                rms = w.obs_rms if key == "obs" else w.return_rms
                rms.mean = np.array(state[key]["mean"], dtype=np.asarray(rms.mean).dtype)
                rms.var = np.array(state[key]["var"], dtype=np.asarray(rms.var).dtype)
                rms.count = state[key]["count"]

    def close(self) -> None:
        """Close the environments."""
        self.env.close()


def make_vector_env(env_id: str, n_envs: int = 1, vec: str = "sync",
                    env_kwargs: dict[str, Any] | None = None, frame_stack: int = 1,
                    normalize_obs: bool = False, normalize_reward: bool = False,
                    gamma: float = 0.99, batched: bool = False) -> EnvBundle:
    """Build ``n_envs`` copies of ``env_id`` behind gymnasium's vector API.

    Environments registered with a ``vector_entry_point`` (the natively batched marketsim
    environments, gymnasium's CartPole) are built by it whatever ``vec`` says when ``n_envs`` > 1;
    others, and every environment when ``n_envs`` is 1, by ``SyncVectorEnv`` (``sync``) or
    ``AsyncVectorEnv`` in subprocesses (``async``) over the plain ``gymnasium.Env``. Batching one
    environment only adds overhead (a CartPole step 50 against 26 us, the futures market's 220
    against 69; docs/guide/performance.md), and both forms step the same trajectories
    (``tests/test_envs.py``). ``batched``: the registered batched env even for one environment,
    for code that reads its batched API (``benchmarks/bench_known_optimum.py``). Wrappers,
    innermost first: episode statistics (raw returns), frame stacking, observation
    normalisation, reward normalisation.
    """
    if n_envs < 1:
        raise ValueError(f"n_envs: expected >= 1, got {n_envs}")
    if vec not in ("sync", "async"):
        raise ValueError(f"vec: expected 'sync' or 'async', got {vec!r}")
    env_id, spec = resolve_env_id(env_id)
    kwargs = dict(env_kwargs or {})
    try:
        if spec.vector_entry_point is not None and (n_envs > 1 or batched):
            env = gym.make_vec(env_id, num_envs=n_envs, vectorization_mode="vector_entry_point",
                               **kwargs)
        else:
            env = gym.make_vec(env_id, num_envs=n_envs, vectorization_mode=vec,
                               vector_kwargs={"autoreset_mode": AutoresetMode.NEXT_STEP}, **kwargs)
    except TypeError as e:
        raise ValueError(f"--env-arg for {env_id!r}: {e}") from None
    mode = env.metadata.get("autoreset_mode", AutoresetMode.NEXT_STEP)
    if mode != AutoresetMode.NEXT_STEP:
        raise ValueError(f"{env_id}: vector env autoreset mode is {mode}; the runner needs NEXT_STEP")
    env = RecordEpisodeStatistics(env)
    if frame_stack > 1:
        env = VectorFrameStack(env, frame_stack)
    obs_norm = rew_norm = None
    if normalize_obs:
        env = obs_norm = NormalizeObservation(env)
    if normalize_reward:
        env = rew_norm = NormalizeReward(env, gamma=gamma)
    return EnvBundle(env, obs_norm, rew_norm)
