"""Market-making backtest: a trained MarketMaking-v0 agent on real candles (replay mode) in one
episode, against the fixed-gamma Avellaneda-Stoikov and GLFT baselines on the same bars.

The episode covers every bar after the ``calib_bars`` used to fit sigma, A and k: with
``n_steps = bars - calib_bars - 2`` replay mode has exactly one start (``calib_bars``), so the
run is deterministic. Equity is ``capital + PnL`` with ``capital = max_inventory * mid_0`` (the
notional of the largest inventory the quoter may hold), so returns are relative to the money a
desk would set aside. docs/guide/evaluation.md, "Market making".
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from marketsim.evaluation.backtest import Policy

__all__ = ["MM_ENV", "MM_BASELINES", "mm_simulate", "mm_frames"]

MM_ENV = "marketsim/MarketMaking-v0"
MM_BASELINES = ("as", "glft")
"""Fixed-gamma Avellaneda-Stoikov and Gueant-Lehalle-Fernandez-Tapia quoters."""


def _env(candles: pd.DataFrame, env_kwargs: dict[str, Any]):
    from marketsim.mm.config import make_config
    from marketsim.mm.vector import MarketMakingVectorEnv

    kw = {k: v for k, v in env_kwargs.items() if k not in ("candles", "data_path", "l2_paths")}
    kw["mode"] = "replay"
    calib = int(kw.get("calib_bars", make_config().calib_bars))
    n_steps = len(candles) - calib - 2
    if n_steps < 1:
        raise ValueError(f"data: {len(candles)} bars, need more than calib_bars + 2 = "
                         f"{calib + 2} for a market-making backtest")
    kw["n_steps"] = n_steps
    return MarketMakingVectorEnv(num_envs=1, candles=candles, **kw), calib


def mm_simulate(candles: pd.DataFrame, env_kwargs: dict[str, Any],
                quote: Callable[[Any, np.ndarray, dict[str, Any]], Any], seed: int = 0,
                frame_stack: int = 1) -> pd.DataFrame:
    """One episode; ``quote(env, obs, info)`` returns ("quotes", bid, ask) or ("action", a).

    Rows (bar close times): equity, position (inventory), price (mid), fills.
    """
    env, calib = _env(candles, env_kwargs)
    obs, info = env.reset(seed=seed)
    bar = candles.index[1] - candles.index[0]
    start = int(env.kernel.start[0])
    mid0 = float(env.kernel.mid[0])
    capital = float(env.config.max_inventory) * mid0
    stack = np.repeat(obs[0][None], frame_stack, 0) if frame_stack > 1 else None
    rows = [(candles.index[start] + bar, capital, 0.0, mid0, 0)]
    done = False
    i = 0
    while not done:
        o = stack if stack is not None else obs[0]
        kind, *q = quote(env, o, info)
        if kind == "quotes":
            obs, _, term, trunc, info = env.step_quotes(*q)
        else:
            obs, _, term, trunc, info = env.step(np.asarray([q[0]]))
        if stack is not None:
            stack = np.concatenate([stack[1:], obs[0][None]], 0)
        i += 1
        rows.append((candles.index[start + i] + bar, capital + float(info["pnl"][0]),
                     float(info["inventory"][0]), float(info["mid"][0]), int(info["fills"][0])))
        done = bool(term[0] or trunc[0])
    idx = pd.DatetimeIndex([r[0] for r in rows], name="timestamp")
    return pd.DataFrame([r[1:] for r in rows], index=idx,
                        columns=["equity", "position", "price", "fills"])


def mm_frames(candles: pd.DataFrame, policy: Policy | None, gamma: float = 0.1,
              seed: int = 0) -> dict[str, pd.DataFrame]:
    """Per-bar frames of the agent (when given) and the AS and GLFT baselines (``gamma``)."""
    from marketsim.mm.baselines import make_strategy

    env_kwargs = dict(policy.env_kwargs) if policy is not None else {}
    out: dict[str, pd.DataFrame] = {}
    if policy is not None:
        decide = policy.decider()
        out["agent"] = mm_simulate(candles, env_kwargs,
                                   lambda env, o, info: ("action", decide(o, info)), seed,
                                   policy.frame_stack)
    base_kw = {k: v for k, v in env_kwargs.items() if k != "action_type"}
    for name in MM_BASELINES:
        holder: dict[str, Any] = {}

        def quote(env, o, info, name=name, holder=holder):
            if "q" not in holder:
                holder["q"] = make_strategy(name, gamma, env)
            return ("quotes", *holder["q"](env))

        out[f"{name}_gamma{gamma:g}"] = mm_simulate(candles, base_kw, quote, seed)
    return out
