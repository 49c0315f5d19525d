"""The runner: the one loop that steps environments, owned by no agent.

It counts steps, hands each vector step to the agent, and at every iteration boundary (a full
rollout for on-policy agents, ``log_every`` steps for off-policy ones) advances schedules, reads
the control file, logs, evaluates and checkpoints. It writes ``summary.json`` at the end.
"""

from __future__ import annotations

import dataclasses
import random
import time
from collections import deque
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rlcore.agent import Transition
from rlcore.config import RunConfig, agent_class, config_to_dict, resolved_env_kwargs
from rlcore.control import ControlFile
from rlcore.envs import EnvBundle, make_vector_env
from rlcore.evaluation import evaluate_agent
from rlcore.hparams import Change, HParamError
from rlcore.runs import RunDir, append_jsonl, atomic_write_text
from rlcore.tblog import TBLogger

__all__ = ["Runner", "train"]


def _device(name: str) -> str:
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {name!r}: CUDA is not available on this machine")
    return name


class Runner:
    """Trains one agent in one run folder. ``Runner(...).train()`` returns the summary dict."""

    def __init__(self, run: RunConfig, algo_cfg: Any, run_dir: RunDir, resume: bool = False,
                 agent: Any = None, embedded: bool = False):
        """``agent``: train this pre-built agent instead of a new one. ``embedded``: a caller (the
        online loop, rlcore/continual/loop.py) owns the run folder: no config/control file, no
        control polling, and :meth:`train` skips the final evaluation, checkpoint and summary."""
        run = dataclasses.replace(run, env_kwargs=resolved_env_kwargs(run))
        self.run, self.algo_cfg, self.rd = run, algo_cfg, run_dir
        self.embedded = embedded
        torch.set_num_threads(max(1, run.torch_threads))
        self.device = _device(run.device)
        _seed_everything(run.seed)
        self.bundle = self._make_env(run.n_envs, train=True)
        env = self.bundle.env
        self.agent = agent if agent is not None else agent_class(run.algo)(
            algo_cfg, env.single_observation_space, env.single_action_space, run.n_envs,
            run.steps, self.device)
        if hasattr(self.agent, "gamma_listeners"):
            self.agent.gamma_listeners.append(self.bundle.set_gamma)
        if self.bundle.rew_norm is not None and "gamma" in self.agent.hparam_values():
            self.bundle.set_gamma(self.agent.hparam_values()["gamma"])
        self.step = 0
        self.wall_before = 0.0
        self.control = ControlFile(run_dir.control, run_dir.path.name)
        if embedded:
            pass
        elif resume:
            self._load_checkpoint(run_dir.latest_checkpoint())
        else:
            atomic_write_text(run_dir.config, _yaml(config_to_dict(run, algo_cfg)))
            self.control.write(self.agent.hparam_schedules())
        self.tb = TBLogger(run_dir.tb)
        self.recent_returns: deque[float] = deque(maxlen=100)
        self.last_eval: dict[str, float] = {}
        self.last_metrics: dict[str, float] = {}
        self.last_checkpoint: Path | None = None
        self._stop = False

    def _make_env(self, n: int, train: bool) -> EnvBundle:
        r = self.run
        kwargs = resolved_env_kwargs(r)
        gamma = getattr(self.algo_cfg, "gamma", 0.99)
        return make_vector_env(r.env, n, r.vec if train else "sync", kwargs, r.frame_stack,
                               r.normalize_obs, r.normalize_reward and train,
                               gamma if isinstance(gamma, float) else 0.99)

    # -- the loop ------------------------------------------------------------------------------
    def train(self) -> dict[str, Any]:
        """Run until ``steps`` environment steps (or a ``stop`` command); return the summary."""
        run, agent, env = self.run, self.agent, self.bundle.env
        n = run.n_envs
        on_policy = getattr(agent, "on_policy", False)
        obs, _ = env.reset(seed=run.seed + self.step)
        state = agent.initial_state(n)
        episode_start = np.ones(n, bool)
        autoreset = np.zeros(n, bool)
        next_boundary = self.step + run.log_every
        next_eval = self.step + run.eval_every if run.eval_every else None
        next_ckpt = self.step + run.checkpoint_every if run.checkpoint_every else None
        t0, step0 = time.perf_counter(), self.step
        bar = _progress(run, self.step)
        agent.advance(self.step)
        while self.step < run.steps and not self._stop:
            res = agent.act(obs, state, episode_start)
            next_obs, rew, term, trunc, info = env.step(res.actions)
            tr = Transition(obs, res.actions, rew, next_obs, term, trunc, ~autoreset,
                            episode_start, state, res.state, res.extras)
            self.step += n
            due = agent.observe(tr)
            if "_episode" in info:
                for i in np.nonzero(info["_episode"])[0]:
                    r, ln = float(info["episode"]["r"][i]), int(info["episode"]["l"][i])
                    self.recent_returns.append(r)
                    self.tb.scalar("charts/episode_return", r, self.step)
                    self.tb.scalar("charts/episode_length", ln, self.step)
            episode_start, autoreset = autoreset, np.logical_or(term, trunc)
            obs, state = next_obs, res.state
            boundary = due if on_policy else self.step >= next_boundary
            if boundary:
                next_boundary = self.step + run.log_every
                self._boundary()
            if due:
                if not on_policy:
                    agent.advance(self.step)
                self.last_metrics = agent.update()
                self._check_finite(self.last_metrics)
                if on_policy:
                    self.tb.scalars(self.last_metrics, self.step)
            if boundary:
                if not on_policy:
                    self.tb.scalars(self.last_metrics, self.step)
                sps = (self.step - step0) / max(time.perf_counter() - t0, 1e-9)
                self.tb.scalar("charts/sps", sps, self.step)
                if bar is not None:
                    bar.update(self.step - bar.n)
                    bar.set_postfix(sps=f"{sps:.0f}", ret=self._recent())
            if next_eval is not None and self.step >= next_eval:
                next_eval += run.eval_every
                self.evaluate()
            if next_ckpt is not None and self.step >= next_ckpt:
                next_ckpt += run.checkpoint_every
                self.checkpoint()
        if bar is not None:
            bar.update(self.step - bar.n)
            bar.close()
        wall = time.perf_counter() - t0
        self.wall_before += wall
        if self.embedded:
            self.tb.close()
            self.bundle.close()
            return {"steps": self.step, "wall_s": wall, "metrics": dict(self.last_metrics),
                    "train_return_mean_100": self._recent()}
        self.evaluate()
        self.checkpoint()
        summary = {
            "algo": run.algo, "env": run.env, "steps": self.step, "wall_s": self.wall_before,
            "sps": (self.step - step0) / max(wall, 1e-9), "run_id": self.rd.path.name,
            "checkpoint": str(self.last_checkpoint), "seed": run.seed,
            "status": "stopped" if self._stop else "completed",
            "train_return_mean_100": self._recent(),
            **self.last_eval,
        }
        self.rd.write_json(self.rd.summary, summary)
        self.tb.close()
        self.bundle.close()
        return summary

    def _recent(self) -> float:
        return float(np.mean(self.recent_returns)) if self.recent_returns else float("nan")

    def _check_finite(self, metrics: dict[str, float]) -> None:
        bad = [k for k, v in metrics.items() if k.startswith("losses/") and not np.isfinite(v)
               and k != "losses/explained_variance"]
        if bad:
            raise FloatingPointError(f"step {self.step}: non-finite {', '.join(bad)}; "
                                     f"last checkpoint: {self.last_checkpoint}")

    # -- iteration boundary --------------------------------------------------------------------
    def _boundary(self) -> None:
        """Advance schedules, apply control-file edits and commands, log hyperparameters."""
        self.agent.advance(self.step)
        if not self.embedded:
            self.poll_control()
        for k, v in self.agent.hparam_values().items():
            self.tb.scalar(f"hparams/{k}", float(v), self.step)

    def poll_control(self) -> list[Change]:
        """Read ``control.yaml`` if it changed; apply, reject and execute what it says."""
        upd = self.control.poll()
        if upd is None:
            return []
        self.agent.advance(self.step)  # changes take effect (and schedules start) at this step
        applied: list[Change] = []
        for fld, reason in upd.errors:
            self._reject(fld, None, reason)
        current = self.agent.hparam_schedules()
        for name, value in upd.hparams.items():
            if name in current and value == current[name]:
                continue
            try:
                applied.append(self.apply_change(name, value, "control"))
            except HParamError as e:
                self._reject(name, value, str(e))
        if not any(f == "control.yaml" for f, _ in upd.errors):
            self.control.write(self.agent.hparam_schedules())
        if upd.command == "checkpoint":
            self.checkpoint()
        elif upd.command == "evaluate":
            self.evaluate()
        elif upd.command == "stop":
            self._stop = True
        return applied

    def apply_change(self, name: str, value: Any, source: str) -> Change:
        """The one door for a mid-run change: set it on the agent and log it once."""
        ch = self.agent.set_hparam(name, value, source)
        ch = Change(self.step, ch.field, ch.old, ch.new, ch.source)
        append_jsonl(self.rd.changes, ch.to_dict())
        self.tb.text("changes", f"step {ch.step}: {ch.field} {ch.old!r} -> {ch.new!r} "
                                f"({ch.source})", self.step)
        self.tb.scalar(f"hparams/{name}", float(self.agent.hparam_values()[name]), self.step)
        _say(f"[control] step {self.step}: {name} {ch.old!r} -> {ch.new!r}")
        return ch

    def _reject(self, fld: str, value: Any, reason: str) -> None:
        append_jsonl(self.rd.rejections, {"step": self.step, "field": fld, "value": value,
                                          "reason": reason})
        self.tb.text("rejections", f"step {self.step}: {reason}", self.step)
        _say(f"[control] step {self.step}: refused {fld}: {reason}")

    # -- evaluation and checkpoints ------------------------------------------------------------
    def evaluate(self) -> dict[str, float]:
        """Deterministic evaluation on fresh environments (frozen normaliser statistics)."""
        run = self.run
        bundle = self._make_env(max(1, min(run.eval_envs, run.eval_episodes)), train=False)
        if bundle.obs_norm is not None:
            bundle.load_norm_state(self.bundle.norm_state())
            bundle.obs_norm.update_running_mean = False
        try:
            res = evaluate_agent(self.agent, bundle, run.eval_episodes, seed=run.seed + 1_000_003)
        finally:
            bundle.close()
        self.last_eval = res
        self.tb.scalar("eval/return_mean", res["eval_return_mean"], self.step)
        self.tb.scalar("eval/return_std", res["eval_return_std"], self.step)
        return res

    def checkpoint(self) -> Path:
        """Write a checkpoint atomically: agent, normalisers, step, RNG states."""
        state = {"agent": self.agent.state_dict(), "norm": self.bundle.norm_state(),
                 "step": self.step, "wall_s": self.wall_before,
                 "rng": {"torch": torch.get_rng_state(), "numpy": np.random.get_state(),
                         "python": random.getstate()},
                 "config": config_to_dict(self.run, self.algo_cfg)}
        self.last_checkpoint = self.rd.save_checkpoint(state, self.step)
        return self.last_checkpoint

    def _load_checkpoint(self, path: Path) -> None:
        state = torch.load(path, map_location=self.device, weights_only=False)
        self.agent.load_state_dict(state["agent"])
        self.bundle.load_norm_state(state["norm"])
        self.step = int(state["step"])
        self.wall_before = float(state.get("wall_s", 0.0))
        rng = state["rng"]
        torch.set_rng_state(rng["torch"])
        np.random.set_state(rng["numpy"])
        random.setstate(rng["python"])
        self.last_checkpoint = path
        if not self.control.path.exists():
            self.control.write(self.agent.hparam_schedules())
        # otherwise the file on disk is the user's: it is read at the first boundary


def train(run: RunConfig, algo_cfg: Any, run_dir: str | Path | None = None,
          resume: bool = False) -> tuple[dict[str, Any], Path]:
    """Train in ``run_dir`` (a new folder under ``run.runs_dir`` by default); returns
    (summary, path of summary.json)."""
    from rlcore.runs import new_run_id

    if run_dir is None:
        run_dir = Path(run.runs_dir) / (run.run_id or new_run_id(run.algo, run.env, run.seed))
        n = 1
        while run.run_id is None and run_dir.exists():  # two runs started in the same second
            n += 1
            run_dir = run_dir.with_name(f"{run_dir.name.rsplit('~', 1)[0]}~{n}")
    rd = RunDir(run_dir)
    if not resume:
        rd.create()
    summary = Runner(run, algo_cfg, rd, resume=resume).train()
    return summary, rd.summary


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def _yaml(d: dict[str, Any]) -> str:
    import yaml

    return yaml.safe_dump(d, sort_keys=False)


def _say(msg: str) -> None:
    try:
        from tqdm import tqdm

        tqdm.write(msg)
    except ImportError:  # pragma: no cover
        print(msg)


def _progress(run: RunConfig, start: int):
    if not run.progress:
        return None
    from tqdm import tqdm

    return tqdm(total=run.steps, initial=start, unit="step", dynamic_ncols=True, mininterval=1.0)
