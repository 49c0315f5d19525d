"""A saved run: rebuild its agent from ``config.yaml`` and the latest checkpoint, and evaluate it
(``python cli.py evaluate RUN_DIR``)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch

from rlcore.config import configs_from_dict
from rlcore.io import read_yaml
from rlcore.runner import build_agent, build_envs
from rlcore.runs import RunDir
from rlcore.stepping import evaluate_agent

__all__ = ["load_run_agent", "evaluate_run"]


def load_run_agent(run_dir: str | Path, device: str = "cpu"):
    """Rebuild a run's agent from ``config.yaml`` and its latest checkpoint.

    Returns (agent, run config, algo config, checkpoint dict).
    """
    rd = RunDir(run_dir)
    run_cfg, algo_cfg = configs_from_dict(read_yaml(rd.config))
    run_cfg = dataclasses.replace(run_cfg, device=device, n_envs=1, progress=False)
    ckpt = torch.load(rd.latest_checkpoint(), map_location=device, weights_only=False)
    envs = build_envs(run_cfg, algo_cfg, 1, train=False)
    try:
        agent = build_agent(run_cfg, algo_cfg, envs, device)
    finally:
        envs.close()
    agent.load_state_dict(ckpt["agent"])
    return agent, run_cfg, algo_cfg, ckpt


def evaluate_run(run_dir: str | Path, episodes: int | None = None, seed: int = 12345,
                 deterministic: bool = True) -> tuple[dict[str, Any], Path]:
    """Evaluate the latest checkpoint (observation normaliser frozen at its saved statistics);
    writes ``eval.json`` in the run folder."""
    agent, run_cfg, algo_cfg, ckpt = load_run_agent(run_dir)
    episodes = episodes or run_cfg.eval_episodes
    envs = build_envs(run_cfg, algo_cfg, max(1, min(run_cfg.eval_envs, episodes)), train=False)
    envs.load_norm_state(ckpt["norm"])
    if envs.obs_norm is not None:
        envs.obs_norm.update_running_mean = False
    try:
        res = evaluate_agent(agent, envs.env, episodes, seed, deterministic)
    finally:
        envs.close()
    res.update({"run_id": Path(run_dir).name, "checkpoint_step": ckpt["step"], "seed": seed,
                "deterministic": deterministic})
    rd = RunDir(run_dir)
    path = rd.write_json(rd.path / "eval.json", res)
    return res, path
