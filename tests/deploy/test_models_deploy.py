"""``python cli.py models deploy``: two registered models (a tiny PPO run trained on real
ETHUSDT bars) paper-trade side by side from the registry, with the exporter on."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli import cli
from marketsim.data.store import frame_to_parquet_bytes
from rlcore.config import resolve_configs
from rlcore.io import atomic_write_bytes
from rlcore.training import train
from tests.live.live_helpers import ETH_1M


def test_deploy_trades_champion_and_challenger_from_the_registry(tmp_path):
    if not ETH_1M.exists():
        pytest.skip(f"shared data file {ETH_1M} not found")
    from marketsim.data import load_candles

    candles = load_candles(ETH_1M)
    atomic_write_bytes(tmp_path / "train.parquet", frame_to_parquet_bytes(candles.iloc[:2000]))
    atomic_write_bytes(tmp_path / "trade.parquet",
                       frame_to_parquet_bytes(candles.iloc[2000:2200]))
    for seed in (1, 2):
        run, algo = resolve_configs({
            "algo": "ppo", "env": "marketsim/CryptoFutures-v0", "steps": 128, "n_envs": 2,
            "seed": seed, "n_steps": 64, "batch_size": 64, "n_epochs": 1, "progress": False,
            "eval_episodes": 1, "eval_envs": 1,
            "env_kwargs": {"data": str(tmp_path / "train.parquet"), "episode_length": 64}})
        train(run, algo, tmp_path / f"run{seed}")
    reg = ["--registry", str(tmp_path / "registry")]
    invoke = CliRunner().invoke
    for seed, alias in ((1, "champion"), (2, "challenger")):
        res = invoke(cli, ["models", "register", str(tmp_path / f"run{seed}"), "--alias", alias,
                           *reg])
        assert res.exit_code == 0, res.output
    out = tmp_path / "ab"
    res = invoke(cli, ["models", "deploy", "--replay", str(tmp_path / "trade.parquet"),
                       "--out", str(out), "--metrics-port", "0", "--min-bars", "20",
                       "--window", "40", *reg])
    assert res.exit_code == 0, res.output
    assert "metrics on http://127.0.0.1:" in res.output
    summary = json.loads(Path(res.output.strip().splitlines()[-1]).read_text())
    assert summary["bars"] == 199  # every bar but the last is decided on
    for name in ("champion", "challenger"):
        v = summary["variants"][name]
        assert v["decisions"] > 100 and v["broker"] == "paper"
    equity = {n: summary["variants"][n]["equity_start"] for n in ("champion", "challenger")}
    assert equity["challenger"] == pytest.approx(equity["champion"] / 9)  # 10% of the capital
    assert (out / "ab.jsonl").is_file()
    assert sorted(p.name.split("-")[0] for p in out.glob("*-*.jsonl")) == \
        ["challenger", "champion"]
