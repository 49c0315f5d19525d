"""``MarketMakingVectorEnv``: N market-making environments stepped together by one kernel."""

from __future__ import annotations

from typing import Any

import gymnasium
import numpy as np
from gymnasium.vector.utils import batch_space

from marketsim.mm.config import make_config
from marketsim.mm.kernel import MMKernel
from marketsim.mm.spaces import action_space, observation_space


class MarketMakingVectorEnv(gymnasium.vector.VectorEnv):
    """Natively batched ``MarketMakingEnv``: environment i seeded ``s + i`` equals a single one.

    Autoreset follows gymnasium's NEXT_STEP mode: the step after an episode ends resets that
    environment, ignores its action and returns its first observation with reward 0 and
    ``terminated = truncated = False``.
    """

    metadata = {"autoreset_mode": gymnasium.vector.AutoresetMode.NEXT_STEP, "render_modes": []}

    def __init__(self, num_envs: int = 1, render_mode: str | None = None, **kwargs: Any) -> None:
        """Build the config and a kernel of ``num_envs`` environments."""
        self.config = make_config(**kwargs)
        self.kernel = MMKernel(self.config, num_envs)
        self.num_envs = num_envs
        self.single_observation_space = observation_space(self.config)
        self.single_action_space = action_space(self.config)
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self.render_mode = render_mode
        self._needs_reset = np.zeros(num_envs, dtype=bool)
        self._all = np.ones(num_envs, dtype=bool)

    def reset(self, *, seed: int | list[int] | None = None,
              options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        """Reset every environment; ``seed=s`` seeds environment i with ``s + i``."""
        if seed is not None:
            seeds = (np.arange(self.num_envs) + seed if np.isscalar(seed)
                     else np.asarray(seed, dtype=np.int64))
            if seeds.shape != (self.num_envs,):
                raise ValueError(f"seed list must have {self.num_envs} entries, got {len(seeds)}")
            self.kernel.seed(self._all, seeds)
        else:
            self.kernel.begin_episode(self._all)
        self.kernel.init_state(self._all)
        self._needs_reset[:] = False
        k = self.kernel
        zeros = np.zeros(self.num_envs)
        return k.obs.copy(), {"pnl": zeros, "inventory": zeros.copy(), "cash": zeros.copy(),
                              "mid": k.mid.copy()}

    def step(self, actions: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict]:
        """Quote from a batch of actions and advance every environment one step."""
        actions = np.asarray(actions)
        if self.config.action_type == "discrete" and self._needs_reset.any():
            actions = np.where(self._needs_reset, 0, actions)  # ignored actions may be invalid
        bid, ask, gamma = self.kernel.action_quotes(actions)
        obs, reward, terminated, truncated, info = self.step_quotes(bid, ask)
        info["gamma"] = gamma
        return obs, reward, terminated, truncated, info

    def step_quotes(self, bid: np.ndarray, ask: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict]:
        """Advance every environment with absolute bid and ask price arrays (used by baselines)."""
        k = self.kernel
        resetting = self._needs_reset.copy()
        if resetting.any():
            k.begin_episode(resetting)
        out = k.step(np.asarray(bid, dtype=float), np.asarray(ask, dtype=float))
        reward = out.pop("reward")
        terminated, truncated = out.pop("terminated"), out.pop("truncated")
        if resetting.any():
            k.init_state(resetting)  # the step above is discarded for these environments
            reward = np.where(resetting, 0.0, reward)
            terminated = terminated & ~resetting
            truncated = truncated & ~resetting
            for name in ("pnl", "inventory", "cash", "fills"):
                out[name] = np.where(resetting, 0, out[name])
            out["mid"] = np.where(resetting, k.mid, out["mid"])
            for name in ("bid_fill", "ask_fill"):
                out[name] = out[name] & ~resetting
        self._needs_reset = terminated | truncated
        return k.obs.copy(), reward, terminated, truncated, out

    def state(self) -> dict[str, np.ndarray]:
        """Arrays baselines quote from: mid, inventory, step, tau, quote sigma."""
        k = self.kernel
        return {"mid": k.mid, "inventory": k.q, "step": k.step_i, "tau": k.tau(),
                "sigma": np.broadcast_to(k.quote_sigma(), (self.num_envs,))}
