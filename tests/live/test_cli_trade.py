"""``python cli.py trade``: a trained agent paper-trades a replay and ends with its backtest's
equity; --live refuses to start without keys or confirmation, and shows no key."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from cli import cli
from marketsim.data.store import frame_to_parquet_bytes
from marketsim.evaluation.backtest import backtest_frames, load_run_policy
from marketsim.live.journal import read_journal
from rlcore.config import resolve_configs
from rlcore.io import atomic_write_bytes
from rlcore.training import train
from tests.live.live_helpers import ETH_1M


@pytest.fixture(scope="module")
def eth_run(tmp_path_factory) -> tuple[Path, Path]:
    """A tiny PPO run (frame stack 2, observation normaliser) trained on ETHUSDT 1m bars,
    and a later slice of the same file to trade."""
    if not ETH_1M.exists():
        pytest.skip(f"shared data file {ETH_1M} not found")
    from marketsim.data import load_candles

    root = tmp_path_factory.mktemp("live_cli")
    candles = load_candles(ETH_1M)
    atomic_write_bytes(root / "train.parquet", frame_to_parquet_bytes(candles.iloc[:3000]))
    atomic_write_bytes(root / "trade.parquet", frame_to_parquet_bytes(candles.iloc[3000:3500]))
    run, algo = resolve_configs({
        "algo": "ppo", "env": "marketsim/CryptoFutures-v0", "steps": 512, "n_envs": 2,
        "seed": 3, "n_steps": 128, "batch_size": 64, "n_epochs": 1, "progress": False,
        "eval_episodes": 1, "eval_envs": 1, "frame_stack": 2, "normalize_obs": True,
        "env_kwargs": {"data": str(root / "train.parquet"), "episode_length": 256,
                       "sizing": "leverage", "drawdown_coef": 0.0, "turnover_coef": 0.0}})
    train(run, algo, root / "run")
    return root / "run", root / "trade.parquet"


def test_paper_replay_of_a_trained_agent_ends_with_the_backtest_equity(eth_run):
    """The command's summary and journal against the backtest of the same run on the same
    bars: equal final equity, equal equity at every decision."""
    run_dir, trade = eth_run
    res = CliRunner().invoke(cli, ["trade", str(run_dir), "--symbol", "ETH/USDT",
                                   "--timeframe", "1m", "--replay", str(trade)])
    assert res.exit_code == 0, res.output
    summary = json.loads(Path(res.output.strip().splitlines()[-1]).read_text())
    from marketsim.data import load_candles

    bt = backtest_frames(load_candles(trade), load_run_policy(run_dir))["agent"]
    assert summary["mode"] == "paper" and summary["run"]["frame_stack"] == 2
    assert summary["equity_end"] == pytest.approx(bt["equity"].iloc[-1], rel=1e-10)
    decisions = [r for r in read_journal(summary["journal"]) if r["kind"] == "decision"]
    np.testing.assert_allclose([d["equity"] for d in decisions], bt["equity"].iloc[:-1],
                               rtol=1e-10)
    assert summary["orders"] > 0


@pytest.mark.parametrize("args, env, message", [
    (["--live"], {}, "MARKETSIM_BINANCEUSDM_API_KEY"),
    (["--live"], {"MARKETSIM_BINANCEUSDM_API_KEY": "k-123456", "MARKETSIM_BINANCEUSDM_SECRET":
                  "s-654321"}, "add --confirm-live"),
    (["--testnet"], {}, "go with --live"),
    (["--live", "--replay", "PATH"], {}, "--replay is for paper trading"),
    (["--order-timeout", "soon"], {}, "--order-timeout 'soon'"),
    (["--timeframe", "7x"], {}, "--timeframe '7x'"),
    (["--max-drawdown", "2"], {}, "max_drawdown: expected a fraction"),
    (["--max-bars", "0"], {}, "--max-bars"),
], ids=["no-keys", "no-confirmation", "testnet-on-paper", "replay-live", "timeout", "timeframe",
        "drawdown", "max-bars"])
def test_bad_or_unsafe_invocations_fail_with_a_clear_message(tmp_path, args, env, message,
                                                             monkeypatch):
    """No keys, no confirmation, a paper-only or live-only flag on the wrong side, bad
    values: a message naming what is wrong, no traceback, no key in the output."""
    for k in ("MARKETSIM_BINANCEUSDM_API_KEY", "MARKETSIM_BINANCEUSDM_SECRET"):
        monkeypatch.delenv(k, raising=False)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    args = [str(tmp_path / "c.csv") if a == "PATH" else a for a in args]
    (tmp_path / "c.csv").write_text("x\n")
    res = CliRunner().invoke(cli, ["trade", str(run_dir), "--symbol", "ETH/USDT", *args],
                             env=env)
    assert res.exit_code != 0
    assert message in res.output
    assert "Traceback" not in res.output
    for secret in env.values():
        assert secret not in res.output
    if "confirm" in message:
        assert "LIVE trading on binanceusdm MAINNET" in res.output
        assert "API key: set (not shown)" in res.output
