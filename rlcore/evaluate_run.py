"""Evaluate a finished (or running) run's latest checkpoint: ``python cli.py evaluate RUN_DIR``."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch

from rlcore.config import agent_class, configs_from_dict
from rlcore.evaluation import evaluate_agent
from rlcore.runs import RunDir, read_yaml

__all__ = ["load_run_agent", "evaluate_run"]


def load_run_agent(run_dir: str | Path, device: str = "cpu"):
    """Rebuild a run's agent from ``config.yaml`` and its latest checkpoint.

    Returns (agent, run config, algo config, checkpoint dict).
    """
    from rlcore.runner import Runner

    rd = RunDir(run_dir)
    run_cfg, algo_cfg = configs_from_dict(read_yaml(rd.config))
    run_cfg = dataclasses.replace(run_cfg, device=device, n_envs=1, progress=False)
    ckpt = torch.load(rd.latest_checkpoint(), map_location=device, weights_only=False)
    probe = Runner.__new__(Runner)
    probe.run, probe.algo_cfg = run_cfg, algo_cfg
    bundle = probe._make_env(1, train=False)
    try:
        env = bundle.env
        agent = agent_class(run_cfg.algo)(algo_cfg, env.single_observation_space,
                                          env.single_action_space, 1, run_cfg.steps, device)
    finally:
        bundle.close()
    agent.load_state_dict(ckpt["agent"])
    return agent, run_cfg, algo_cfg, ckpt


def evaluate_run(run_dir: str | Path, episodes: int | None = None, seed: int = 12345,
                 deterministic: bool = True) -> tuple[dict[str, Any], Path]:
    """Evaluate the latest checkpoint; writes ``eval.json`` in the run folder."""
    from rlcore.runner import Runner

    agent, run_cfg, algo_cfg, ckpt = load_run_agent(run_dir)
    episodes = episodes or run_cfg.eval_episodes
    probe = Runner.__new__(Runner)
    probe.run, probe.algo_cfg = run_cfg, algo_cfg
    bundle = probe._make_env(max(1, min(run_cfg.eval_envs, episodes)), train=False)
    if bundle.obs_norm is not None:
        bundle.load_norm_state(ckpt["norm"])
        bundle.obs_norm.update_running_mean = False
    try:
        res = evaluate_agent(agent, bundle, episodes, seed, deterministic)
    finally:
        bundle.close()
    res.update({"run_id": Path(run_dir).name, "checkpoint_step": ckpt["step"], "seed": seed,
                "deterministic": deterministic})
    rd = RunDir(run_dir)
    path = rd.write_json(rd.path / "eval.json", res)
    return res, path
