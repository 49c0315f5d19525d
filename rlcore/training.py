"""A training run in a run folder: what ``python cli.py train`` does.

:class:`TrainingRun` puts a :class:`rlcore.runner.Runner` in ``runs/<run-id>/``: it writes the
resolved ``config.yaml`` and ``control.yaml``, gives the runner a :class:`RunFolderSink`, the
control file, an evaluator and the folder's checkpointer, resumes from the latest checkpoint, and
at the end evaluates, checkpoints and writes ``summary.json``. :func:`train` is the one-call form.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch

from rlcore.config import RunConfig, config_to_dict, resolved_env_kwargs
from rlcore.control import ControlFile
from rlcore.io import atomic_write_text
from rlcore.runner import Runner, build_agent, build_envs, make_evaluator, resolve_device, seed_everything
from rlcore.runs import RunDir, new_run_id
from rlcore.sinks import RunFolderSink

__all__ = ["TrainingRun", "train"]


class TrainingRun:
    """One run folder being trained (new, or resumed from its latest checkpoint).

    Attributes:
        rd: the run folder.
        runner: the :class:`Runner` (its ``agent``, ``envs``, ``step``, ``poll_control`` ...).
    """

    def __init__(self, run: RunConfig, algo_cfg: Any, run_dir: RunDir, resume: bool = False):
        run = dataclasses.replace(run, env_kwargs=resolved_env_kwargs(run))
        self.run, self.algo_cfg, self.rd = run, algo_cfg, run_dir
        torch.set_num_threads(max(1, run.torch_threads))
        device = resolve_device(run.device)
        seed_everything(run.seed)
        envs = build_envs(run, algo_cfg)
        agent = build_agent(run, algo_cfg, envs, device)
        control = ControlFile(run_dir.control, run_dir.path.name)
        self.runner = Runner(agent, envs, RunFolderSink(run_dir.tb, run_dir.changes,
                                                        run_dir.rejections),
                             run, control=control, evaluator=make_evaluator(run, algo_cfg),
                             checkpointer=run_dir.save_checkpoint)
        if resume:
            path = run_dir.latest_checkpoint()
            self.runner.load_state_dict(torch.load(path, map_location=device,
                                                   weights_only=False))
            self.runner.last_checkpoint = path
            if not control.path.exists():
                control.write(agent.hparam_schedules())
            # otherwise the file on disk is the user's: it is read at the first boundary
        else:
            atomic_write_text(run_dir.config, _yaml(config_to_dict(run, algo_cfg)))
            control.write(agent.hparam_schedules())

    def train(self) -> dict[str, Any]:
        """Train to ``run.steps`` (or a ``stop`` command); evaluate, checkpoint, write and
        return the summary."""
        r, run = self.runner, self.run
        try:
            out = r.run(run.steps)
            r.evaluate()
            r.checkpoint()
            summary = {
                "algo": run.algo, "env": run.env, "steps": r.step, "wall_s": r.wall_s,
                "sps": out["sps"], "run_id": self.rd.path.name,
                "checkpoint": str(r.last_checkpoint), "seed": run.seed,
                "status": "stopped" if r.stopped else "completed",
                "train_return_mean_100": r.recent_return(),
                "train_metrics_mean_100": r.recent_metrics_mean(),
                **r.last_eval,
            }
            self.rd.write_json(self.rd.summary, summary)
        finally:
            r.sink.close()
            r.envs.close()
        return summary


def train(run: RunConfig, algo_cfg: Any, run_dir: str | Path | None = None,
          resume: bool = False) -> tuple[dict[str, Any], Path]:
    """Train in ``run_dir`` (a new folder under ``run.runs_dir`` by default); returns
    (summary, path of summary.json)."""
    if run_dir is None:
        run_dir = Path(run.runs_dir) / (run.run_id or new_run_id(run.algo, run.env, run.seed))
        n = 1
        while run.run_id is None and run_dir.exists():  # two runs started in the same second
            n += 1
            run_dir = run_dir.with_name(f"{run_dir.name.rsplit('~', 1)[0]}~{n}")
    rd = RunDir(run_dir)
    if not resume:
        rd.create()
    summary = TrainingRun(run, algo_cfg, rd, resume=resume).train()
    return summary, rd.summary


def _yaml(d: dict[str, Any]) -> str:
    import yaml

    return yaml.safe_dump(d, sort_keys=False)
