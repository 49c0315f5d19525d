"""Helpers of the deployment tests: run folders to register, without training."""

from __future__ import annotations

import json
import os
from pathlib import Path

import yaml

from rlcore.config import config_to_dict, resolve_configs


def fake_run(root: Path, name: str, data: Path, weights: bytes = b"weights",
             algo: str = "ppo") -> Path:
    """A run folder as ``train`` leaves it (config.yaml with ``env_kwargs.data``, a checkpoint,
    summary.json, a backtest report), with ``weights`` as the checkpoint's bytes."""
    run, algo_cfg = resolve_configs({"algo": algo, "env": "marketsim/CryptoFutures-v0",
                                     "steps": 128, "n_envs": 1, "progress": False,
                                     "run_id": name, "runs_dir": str(root),
                                     "env_kwargs": {"data": str(data), "episode_length": 64}})
    rd = root / name
    (rd / "checkpoints").mkdir(parents=True)
    (rd / "config.yaml").write_text(yaml.safe_dump(config_to_dict(run, algo_cfg),
                                                   sort_keys=False))
    (rd / "checkpoints" / "step_000000000128.pt").write_bytes(weights)
    (rd / "checkpoints" / "latest").write_text("step_000000000128.pt\n")
    (rd / "summary.json").write_text(json.dumps({"steps": 128, "sps": 1000.0,
                                                 "eval_return_mean": 0.5, "status": "completed"}))
    (rd / "backtest" / "calm").mkdir(parents=True)
    (rd / "backtest" / "calm" / "report.json").write_text(json.dumps(
        {"sharpe": 1.5, "total_return": 0.02, "max_drawdown": -0.05, "n_bars": 1000}))
    return rd


def data_file(root: Path, content: bytes = b"open_time_ms,close\n0,1\n") -> Path:
    """A small 'training data' file."""
    path = root / "data.csv"
    path.write_bytes(content)
    os.utime(path)
    return path
