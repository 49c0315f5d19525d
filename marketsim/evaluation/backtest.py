"""Backtest: run a policy deterministically over a whole candle range in one episode.

The futures environment is built with ``episode_length=None`` and reset at its first bar with a
full feature window (``reset(options={"start": market.t_min})``), so every run over the same
data sees the same bars. Baselines (flat, buy-and-hold) run through the same environment, with
the same fees, slippage and funding. docs/guide/evaluation.md, "Backtest".
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from marketsim.futures.env import CryptoFuturesEnv

__all__ = ["FUTURES_ENV", "Policy", "RunPolicy", "load_run_policy", "ensemble_policy",
           "simulate", "flat_decide", "buy_and_hold_decide", "backtest_frames",
           "slice_candles", "baseline_kwargs", "norm_fn"]

FUTURES_ENV = "marketsim/CryptoFutures-v0"
NORM_EPS = 1e-8
"""epsilon of gymnasium's NormalizeObservation: (x - mean) / sqrt(var + eps)."""

Decide = Callable[[np.ndarray, dict[str, Any]], Any]


@dataclasses.dataclass
class Policy:
    """An agent ready to act in a backtest: frame stack and observation transform included."""

    agent: Any
    frame_stack: int = 1
    obs_fn: Callable[[np.ndarray], np.ndarray] | None = None
    action_type: str = "continuous"
    env_kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)

    def decider(self) -> Decide:
        """A stateful ``decide(obs, info)`` for :func:`simulate` (deterministic actions)."""
        agent, fn = self.agent, self.obs_fn
        box: dict[str, Any] = {"state": agent.initial_state(1), "start": np.ones(1, bool)}

        def decide(obs: np.ndarray, info: dict[str, Any]) -> Any:
            x = obs[None]
            if fn is not None:
                x = fn(x)
            res = agent.act(x, box["state"], box["start"], deterministic=True)
            box["state"], box["start"] = res.state, np.zeros(1, bool)
            a = np.asarray(res.actions)[0]
            return int(a) if self.action_type == "discrete" else a

        return decide


@dataclasses.dataclass
class RunPolicy(Policy):
    """A :class:`Policy` rebuilt from a run folder, with its provenance."""

    run_dir: str = ""
    algo: str = ""
    env: str = ""
    checkpoint_step: int = 0


def norm_fn(state: dict[str, Any] | None) -> Callable[[np.ndarray], np.ndarray] | None:
    """The run's frozen observation normaliser from ``ckpt["norm"]`` (None when absent)."""
    if not state or "obs" not in state:
        return None
    mean = np.asarray(state["obs"]["mean"])
    scale = np.sqrt(np.asarray(state["obs"]["var"]) + NORM_EPS)

    def fn(x: np.ndarray) -> np.ndarray:
        return ((x - mean) / scale).astype(np.float32)

    return fn


def load_run_policy(run_dir: str | Path) -> RunPolicy:
    """Rebuild a run's agent (latest checkpoint) with its frame stack and normaliser."""
    from rlcore.envs import env_kwargs_for
    from rlcore.saved import load_run_agent

    agent, run_cfg, _, ckpt = load_run_agent(run_dir)
    kwargs = {k: v for k, v in dict(run_cfg.env_kwargs).items() if k != "data"}
    kwargs = env_kwargs_for(FUTURES_ENV, kwargs, agent.action_types)  # the market backtested
    action_type = kwargs["action_type"]
    fn = norm_fn(ckpt.get("norm")) if run_cfg.normalize_obs else None
    return RunPolicy(agent, run_cfg.frame_stack, fn, action_type, kwargs, str(run_dir),
                     run_cfg.algo, run_cfg.env, int(ckpt.get("step", 0)))


def ensemble_policy(policies: list[RunPolicy], weights: list[float] | None) -> Policy:
    """One :class:`Policy` blending several run policies (rlcore.ensemble.Ensemble)."""
    from rlcore.ensemble import Ensemble, EnsembleError

    first = policies[0]
    for p in policies[1:]:
        if p.frame_stack != first.frame_stack or p.action_type != first.action_type:
            raise EnsembleError(f"{p.run_dir}: frame_stack/action_type "
                                f"({p.frame_stack}, {p.action_type}) differ from {first.run_dir} "
                                f"({first.frame_stack}, {first.action_type})")
    ens = Ensemble([p.agent for p in policies], weights, [p.obs_fn for p in policies])
    return Policy(ens, first.frame_stack, None, first.action_type, dict(first.env_kwargs))


def slice_candles(df: pd.DataFrame, start: str | None = None,
                  end: str | None = None) -> pd.DataFrame:
    """Rows with start <= open time < end (UTC; either bound optional)."""
    out = df
    if start:
        out = out[out.index >= _utc(start, "--start")]
    if end:
        out = out[out.index < _utc(end, "--end")]
    return out


def _utc(text: str, what: str) -> pd.Timestamp:
    try:
        ts = pd.Timestamp(text)
    except (ValueError, TypeError) as e:
        raise ValueError(f"{what} {text!r}: expected a date/time like 2021-05-01 ({e})") from None
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


# --8<-- [start:simulate]
def simulate(candles: pd.DataFrame, env_kwargs: dict[str, Any], decide: Decide,
             frame_stack: int = 1, funding: Any = 0.0001,
             progress: str | None = None) -> pd.DataFrame:
    """Run one episode from the first bar with a full feature window to the data's end.

    Returns one row per step plus the starting row, indexed by the close time of the bar the
    row's equity is marked at: equity, position (held over the interval ending at the row),
    price, action (target fraction), and the fees, funding, slippage paid and turnover traded in
    that step. If the account is wiped out (terminated), later rows keep its final equity with
    no position, so every curve spans the same time. ``progress``: a label for a progress bar
    on stderr (None: none).
    """
    kw = {**env_kwargs, "episode_length": None}
    env = CryptoFuturesEnv(data=candles, funding=funding, **kw)
    m = env.market
    start = m.t_min
    obs, info = env.reset(options={"start": start})
    stack = np.repeat(obs[None], frame_stack, 0) if frame_stack > 1 else None
    rows = [(m.close_ns[start], float(info["equity"]), 0.0, float(info["price"]), 0.0,
             0.0, 0.0, 0.0, 0.0)]
    prev = {"fees": 0.0, "funding": 0.0, "slippage": 0.0}
    done = False
    bar = _bar(progress, m.n_bars - start - 1)
    while not done:
        if bar is not None and len(rows) % 500 == 0:
            bar.update(len(rows) - bar.n)
        o = stack if stack is not None else obs
        act = decide(o, info)
        obs, _, term, trunc, info = env.step(act)
        if stack is not None:
            stack = np.concatenate([stack[1:], obs[None]], 0)
        cur = {k: float(info[k]) for k in prev}
        a = float(np.asarray(act, dtype=np.float64).reshape(-1)[0])
        rows.append((m.close_ns[int(info["bar"])], float(info["equity"]),
                     float(info["position"]), float(info["price"]), a,
                     cur["fees"] - prev["fees"], cur["funding"] - prev["funding"],
                     cur["slippage"] - prev["slippage"], float(info["turnover"])))
        prev = cur
        done = bool(term or trunc)
    if bar is not None:
        bar.close()
    last_bar = int(info["bar"])
    for t in range(last_bar + 1, m.n_bars):  # wiped out before the end: hold the remains
        rows.append((m.close_ns[t], rows[-1][1], 0.0, float(m.close[t]), 0.0, 0.0, 0.0, 0.0,
                     0.0))
    cols = ["equity", "position", "price", "action", "fees", "funding", "slippage", "turnover"]
    idx = pd.DatetimeIndex(pd.to_datetime([r[0] for r in rows], utc=True), name="timestamp")
    return pd.DataFrame([r[1:] for r in rows], index=idx, columns=cols)
# --8<-- [end:simulate]


def _bar(label: str | None, total: int):
    if label is None:
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc=label, unit="bar", leave=False, mininterval=0.5,
                disable=None)  # a terminal shows it; a pipe or a log does not


def flat_decide(obs: np.ndarray, info: dict[str, Any]) -> float:
    """The flat baseline: never hold a position."""
    return np.array([0.0], dtype=np.float32)


def buy_and_hold_decide(max_leverage: float = 1.0) -> Decide:
    """Buy 1x equity at the first bar, then hold that quantity (the target is the current
    position's fraction, so no rebalancing trade happens). With ``max_leverage = 1`` (the
    baselines' setting) the isolated margin is the whole notional: no liquidation."""
    first = {"done": False}

    def decide(obs: np.ndarray, info: dict[str, Any]) -> Any:
        if not first["done"]:
            first["done"] = True
            return np.array([1.0 / max_leverage])
        eq = float(info["equity"])
        frac = float(info["position"]) * float(info["price"]) / (max_leverage * eq) if eq > 0 \
            else 0.0
        return np.array([min(max(frac, -1.0), 1.0)])

    return decide


def baseline_kwargs(env_kwargs: dict[str, Any]) -> dict[str, Any]:
    """Environment settings of the baselines: the agent's costs; continuous actions, leverage
    sizing with ``max_leverage = 1`` (a 1x position is fully margined, as in spot)."""
    kw = dict(env_kwargs)
    kw.update(action_type="continuous", sizing="leverage", min_trade_fraction=0.01,
              max_leverage=1.0)
    for k in ("drawdown_coef", "turnover_coef"):
        kw.pop(k, None)
    return kw


def backtest_frames(candles: pd.DataFrame, policy: Policy | None,
                    funding: Any = 0.0001, progress: bool = False) -> dict[str, pd.DataFrame]:
    """Per-bar frames of the agent (when given) and of the flat and buy-and-hold baselines;
    ``progress`` shows a bar per simulation on stderr."""
    env_kwargs = dict(policy.env_kwargs) if policy is not None else {}
    env_kwargs.pop("data", None)
    base = baseline_kwargs(env_kwargs)
    out: dict[str, pd.DataFrame] = {}
    if policy is not None:
        out["agent"] = simulate(candles, env_kwargs, policy.decider(), policy.frame_stack,
                                funding, "agent" if progress else None)
    out["flat"] = simulate(candles, base, flat_decide, 1, funding,
                           "flat" if progress else None)
    out["buy_and_hold"] = simulate(candles, base, buy_and_hold_decide(1.0), 1, funding,
                                   "buy_and_hold" if progress else None)
    return out
