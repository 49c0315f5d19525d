"""Backtests: determinism, report contents, baselines' accounting, normaliser, CLI, ensemble."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from marketsim.evaluation.backtest import (
    backtest_frames,
    buy_and_hold_decide,
    load_run_policy,
    norm_fn,
    simulate,
)
from marketsim.evaluation.backtest_report import run_backtest
from marketsim.evaluation.cli import backtest, compare
from marketsim.futures.config import FuturesConfig

REQUIRED = ("total_return", "annual_return", "sharpe", "sortino", "calmar", "max_drawdown",
            "profitable_days", "fees", "funding", "turnover")


def test_report_keys_and_equity_csv(ppo_backtest, test_candles):
    rep = json.loads(ppo_backtest.read_text())
    for k in REQUIRED:
        assert isinstance(rep[k], float), k
        for b in ("flat", "buy_and_hold"):
            assert isinstance(rep["baselines"][b][k], float), (b, k)
    assert rep["max_drawdown"] <= 0
    eq = pd.read_csv(ppo_backtest.parent / "equity.csv", index_col="timestamp")
    assert {"equity", "position", "equity_flat", "equity_buy_and_hold"} <= set(eq.columns)
    assert rep["final_equity"] == pytest.approx(eq["equity"].iloc[-1], rel=1e-9)
    # one episode from the first bar with a full feature window to the data's end
    cfg = FuturesConfig()
    t_min = cfg.window + cfg.vol_window
    assert len(eq) == len(test_candles) - t_min
    first_close = test_candles.index[t_min] + pd.Timedelta(hours=1)
    assert pd.Timestamp(eq.index[0]) == first_close
    assert rep["trading_start"] == first_close.isoformat()
    assert rep["baselines"]["flat"]["total_return"] == 0.0
    assert (eq["equity_flat"] == eq["equity_flat"].iloc[0]).all()
    for f in ("backtest.png", "report.html"):
        assert (ppo_backtest.parent / f).stat().st_size > 1000


def test_deterministic_byte_identical(ppo_run, test_candles, ppo_backtest, tmp_path):
    again = run_backtest([ppo_run], data=test_candles, out=tmp_path / "again")
    assert again.read_bytes() == ppo_backtest.read_bytes()
    assert (tmp_path / "again" / "equity.csv").read_bytes() == \
        (ppo_backtest.parent / "equity.csv").read_bytes()


def test_buy_and_hold_accounting(test_candles):
    """Equity = E0 + q (P_T - P_0) - fees - slippage - funding, with q the most that 1x buys:
    margin q P_0 plus the opening fee and slippage is E0 (docs/marketsim/futures.md, eq. (19))."""
    kw = {"action_type": "continuous", "max_leverage": 1.0, "sizing": "leverage"}
    f = simulate(test_candles, kw, buy_and_hold_decide(1.0), funding=0.0001)
    e0, p0 = f["equity"].iloc[0], f["price"].iloc[0]
    q = f["position"].iloc[1]
    assert q < e0 / p0
    spent = q * p0 + f["fees"].iloc[1] + f["slippage"].iloc[1]  # the most that fits
    assert e0 * (1 - 1e-6) <= spent <= e0 * (1 + 1e-12)
    assert f["position"].iloc[1:].to_numpy() == pytest.approx(q, rel=1e-12)
    assert (f["turnover"].iloc[2:] == 0).all()  # bought once, never rebalanced
    fees = f["fees"].sum()
    assert fees == pytest.approx(q * p0 * FuturesConfig().taker_fee, rel=1e-9)
    pnl = q * (f["price"].iloc[-1] - p0)
    want = e0 + pnl - fees - f["slippage"].sum() - f["funding"].sum()
    assert f["equity"].iloc[-1] == pytest.approx(want, rel=1e-10)
    # funding: longs pay 0.01% of notional at each 8h event (00, 08, 16 UTC)
    n_events = int(((f.index[1:].hour % 8) == 0).sum())
    assert f["funding"].sum() == pytest.approx(
        sum(q * f["price"].iloc[i] * 1e-4 for i in range(1, len(f)) if f.index[i].hour % 8 == 0),
        rel=1e-9)
    assert n_events > 0


def test_normaliser_matches_gymnasium_wrapper(ppo_run):
    """The backtest's frozen normaliser equals gymnasium's NormalizeObservation with the
    checkpoint's statistics."""
    import torch
    from gymnasium.wrappers.vector import NormalizeObservation

    from rlcore.envs import make_vector_env
    from rlcore.runs import RunDir

    ckpt = torch.load(RunDir(ppo_run).latest_checkpoint(), weights_only=False)
    pol = load_run_policy(ppo_run)
    assert pol.obs_fn is not None and pol.algo == "ppo"
    bundle = make_vector_env("marketsim/CryptoFutures-v0", 1, "sync",
                             {"data": str(ppo_run.parent / "train.parquet")}, 1, True, False)
    assert isinstance(bundle.obs_norm, NormalizeObservation)
    bundle.load_norm_state(ckpt["norm"])
    bundle.obs_norm.update_running_mean = False
    raw = np.random.default_rng(0).normal(size=(1, bundle.env.single_observation_space.shape[0]))
    np.testing.assert_array_equal(pol.obs_fn(raw), bundle.obs_norm.observations(raw))
    assert norm_fn({}) is None
    bundle.close()


def test_policy_actions_are_the_agents(ppo_run, test_candles):
    """Replaying the recorded target fractions reproduces the agent's equity curve."""
    pol = load_run_policy(ppo_run)
    frames = backtest_frames(test_candles, pol)
    agent = frames["agent"]
    acts = iter(agent["action"].iloc[1:].to_numpy())

    def replay(obs, info):
        return np.array([next(acts)], dtype=np.float32)

    again = simulate(test_candles, pol.env_kwargs, replay)
    np.testing.assert_allclose(again["equity"], agent["equity"], rtol=1e-12)
    assert agent["action"].abs().max() > 0


def test_cli_prints_report_path_last(ppo_run, test_candles, tmp_path):
    path = tmp_path / "candles.parquet"
    from marketsim.data.store import frame_to_parquet_bytes

    path.write_bytes(frame_to_parquet_bytes(test_candles))
    res = CliRunner().invoke(backtest, [str(ppo_run), "--data", str(path), "--start",
                                        str(test_candles.index[10].date()), "--out",
                                        str(tmp_path / "bt")])
    assert res.exit_code == 0, res.output
    last = res.output.strip().splitlines()[-1]
    assert last == str(tmp_path / "bt" / "report.json")
    rep = json.loads(open(last).read())
    assert rep["data"]["first_bar"].startswith(str(test_candles.index[10].date()))
    bad = CliRunner().invoke(backtest, [str(ppo_run)])
    assert bad.exit_code != 0 and "exactly one of --data and --stress" in bad.output


def test_ensemble_backtest_endpoints(ppo_run, sac_run, test_candles, tmp_path):
    """Blending PPO and SAC with weights 1,0 gives PPO's backtest exactly; 0,1 gives SAC's."""
    single = {}
    for name, run in (("ppo", ppo_run), ("sac", sac_run)):
        p = run_backtest([run], data=test_candles, out=tmp_path / name)
        single[name] = pd.read_csv(p.parent / "equity.csv")["equity"]
    assert not np.allclose(single["ppo"], single["sac"])
    from marketsim.data.store import frame_to_parquet_bytes

    data = tmp_path / "test.parquet"
    data.write_bytes(frame_to_parquet_bytes(test_candles))
    res = CliRunner().invoke(backtest, [str(ppo_run), str(sac_run), "--data", str(data),
                                        "--weights", "1,0", "--out", str(tmp_path / "e_ppo")])
    assert res.exit_code == 0, res.output
    p = tmp_path / "e_ppo" / "report.json"
    eq = pd.read_csv(p.parent / "equity.csv")["equity"]
    np.testing.assert_array_equal(eq.to_numpy(), single["ppo"].to_numpy())
    assert json.loads(p.read_text())["weights"] == [1.0, 0.0]
    p = run_backtest([ppo_run, sac_run], data=test_candles, out=tmp_path / "e_sac",
                     weights=[0.0, 1.0])
    eq = pd.read_csv(p.parent / "equity.csv")["equity"]
    np.testing.assert_array_equal(eq.to_numpy(), single["sac"].to_numpy())
    p = run_backtest([ppo_run, sac_run], data=test_candles, out=tmp_path / "e_mid",
                     weights=[0.5, 0.5])
    mid = pd.read_csv(p.parent / "equity.csv")["equity"]
    assert not np.allclose(mid, single["ppo"]) and not np.allclose(mid, single["sac"])


def test_compare_two_reports(ppo_backtest, tmp_path, ppo_run, test_candles):
    other = run_backtest([ppo_run], data=test_candles.iloc[:300], out=tmp_path / "short")
    res = CliRunner().invoke(compare, [str(ppo_backtest.parent), str(other.parent), "--out",
                                       str(tmp_path / "cmp")])
    assert res.exit_code == 0, res.output
    out = json.loads(open(res.output.strip().splitlines()[-1]).read())
    assert len(out["runs"]) == 2
    rep = json.loads(ppo_backtest.read_text())
    col = next(v for k, v in out["runs"].items() if "[ppo]" in k)
    assert col["sharpe"] == rep["sharpe"]
    assert (tmp_path / "cmp" / "compare.png").stat().st_size > 1000
    bad = CliRunner().invoke(compare, [str(tmp_path)])
    assert bad.exit_code != 0 and "no report.json" in bad.output
