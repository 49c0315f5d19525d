"""``MarketMakingEnv``: one Avellaneda-Stoikov market-making environment (the kernel with N = 1)."""

from __future__ import annotations

from typing import Any

import gymnasium
import numpy as np

from marketsim.mm.config import make_config
from marketsim.mm.kernel import MMKernel
from marketsim.mm.spaces import action_space, observation_space

_ONE = np.ones(1, dtype=bool)


class MarketMakingEnv(gymnasium.Env):
    """Quote a bid and an ask around the mid every step; kwargs are the fields of ``MMConfig``.

    Observation: ``[q/max_inventory, time left, recent mid changes / (sigma sqrt(dt)),
    PnL / pnl_scale, sigma_hat / sigma]``. Reward: PnL change minus ``phi*q^2*dt``.
    """

    metadata = {"render_modes": []}

    def __init__(self, render_mode: str | None = None, **kwargs: Any) -> None:
        """Build the config and a kernel of one environment."""
        self.config = make_config(**kwargs)
        self.kernel = MMKernel(self.config, 1)
        self.observation_space = observation_space(self.config)
        self.action_space = action_space(self.config)
        self.render_mode = render_mode

    def reset(self, *, seed: int | None = None,
              options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        """Start an episode; a seed fixes this and every later unseeded episode."""
        super().reset(seed=seed)
        if seed is not None:
            self.kernel.seed(_ONE, np.array([seed]))
        else:
            self.kernel.begin_episode(_ONE)
        self.kernel.init_state(_ONE)
        return self.kernel.obs[0].copy(), self._reset_info()

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Quote from ``action`` and advance one step."""
        bid, ask, gamma = self.kernel.action_quotes(np.asarray(action)[None])
        out = self.kernel.step(bid, ask)
        info = _step_info(out)
        info["gamma"] = gamma.item()
        return (self.kernel.obs[0].copy(), out["reward"].item(), out["terminated"].item(),
                out["truncated"].item(), info)

    def step_quotes(self, bid: float, ask: float) -> tuple[np.ndarray, float, bool, bool, dict]:
        """Advance one step with absolute bid and ask prices (used by baselines)."""
        out = self.kernel.step(np.array([bid], dtype=float), np.array([ask], dtype=float))
        return (self.kernel.obs[0].copy(), out["reward"].item(), out["terminated"].item(),
                out["truncated"].item(), _step_info(out))

    def _reset_info(self) -> dict[str, Any]:
        """Info after reset: the starting state."""
        k = self.kernel
        return {"pnl": 0.0, "inventory": 0.0, "cash": 0.0, "mid": float(k.mid[0])}


def _step_info(out: dict[str, np.ndarray]) -> dict[str, Any]:
    """The kernel's per-step outputs of the one environment as Python scalars (``info``)."""
    return {name: value.item() for name, value in out.items()
            if name not in ("reward", "terminated", "truncated")}
