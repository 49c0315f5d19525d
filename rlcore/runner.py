"""The runner: the one loop that steps environments, owned by no agent.

:func:`build_envs` builds a run's environments (a free function: training, evaluation, the
online loop and backtests all call it). :class:`Runner` takes an agent, environments and a log
sink and steps them until a given step; it has no modes. It owns the one step clock: it counts
environment steps, hands the count to the agent on every transition and to ``advance`` for
schedules, and at every iteration boundary (a full rollout for on-policy agents, ``log_every``
steps for off-policy ones) advances schedules, reads the control file (if it was given one),
and applies the environment side of any change (a new gamma reaches the reward normaliser,
whatever the algorithm); it logs the update metrics at most every ``log_every`` steps.
Evaluation and checkpoints are parts the caller passes in.

``rlcore/training.py`` puts a runner in a run folder (``python cli.py train``).
"""

from __future__ import annotations

import random
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rlcore.config import RunConfig, agent_class, resolved_env_kwargs
from rlcore.control import ControlFile, same_value
from rlcore.envs import EnvBundle, make_vector_env
from rlcore.hparams import Change, HParamError
from rlcore.io import brief
from rlcore.sinks import LogSink
from rlcore.stepping import VectorStepper, evaluate_agent, finished_episodes

__all__ = ["Runner", "build_envs", "build_agent", "make_evaluator", "resolve_device",
           "seed_everything"]


def resolve_device(name: str) -> str:
    """``auto`` -> cuda if available else cpu; ValueError for cuda on a machine without it."""
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {name!r}: CUDA is not available on this machine")
    return name


def seed_everything(seed: int) -> None:
    """Seed Python's, numpy's and torch's global generators."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def build_envs(run: RunConfig, algo_cfg: Any, n_envs: int | None = None,
               train: bool = True, batched: bool = False) -> EnvBundle:
    """The run's environments: ``n_envs`` (default ``run.n_envs``) copies of ``run.env`` with the
    run's wrappers; the reward normaliser only for training, with the algorithm's initial gamma.
    Evaluation environments (``train=False``) are stepped in one process. ``batched``: see
    :func:`rlcore.envs.make_vector_env`."""
    gamma = getattr(algo_cfg, "gamma", 0.99)
    return make_vector_env(run.env, n_envs or run.n_envs, run.vec if train else "sync",
                           resolved_env_kwargs(run), run.frame_stack, run.normalize_obs,
                           run.normalize_reward and train,
                           gamma if isinstance(gamma, float) else 0.99, batched)


def build_agent(run: RunConfig, algo_cfg: Any, envs: EnvBundle, device: str = "cpu") -> Any:
    """A new agent of ``run.algo`` for the spaces of ``envs``."""
    env = envs.env
    return agent_class(run.algo)(algo_cfg, env.single_observation_space,
                                 env.single_action_space, env.num_envs, run.steps, device)


def make_evaluator(run: RunConfig, algo_cfg: Any) -> Callable[[Any, EnvBundle], dict[str, float]]:
    """A function ``(agent, training envs) -> result`` that runs ``run.eval_episodes``
    deterministic episodes on fresh environments, with the training observation normaliser's
    statistics frozen."""

    def evaluate(agent: Any, train_envs: EnvBundle) -> dict[str, float]:
        bundle = build_envs(run, algo_cfg, max(1, min(run.eval_envs, run.eval_episodes)),
                            train=False)
        try:
            bundle.load_norm_state(train_envs.norm_state())
            if bundle.obs_norm is not None:
                bundle.obs_norm.update_running_mean = False
            return evaluate_agent(agent, bundle.env, run.eval_episodes,
                                  seed=run.seed + 1_000_003)
        finally:
            bundle.close()

    return evaluate


class Runner:
    """Steps ``envs`` with ``agent`` and records to ``sink``.

    Args:
        agent: an :class:`rlcore.agent.Agent`.
        envs: the environments (:func:`build_envs`).
        sink: where scalars, changes, refusals and evaluations go (:mod:`rlcore.sinks`).
        settings: the run settings used here (seed, ``log_every``, ``eval_every``,
            ``checkpoint_every``, ``progress``).
        step: the clock's start (the online loop's running total; a resumed training run loads
            its step with :meth:`load_state_dict`).
        control: a control file to read at iteration boundaries, or None.
        evaluator: ``(agent, envs) -> result`` for periodic and commanded evaluations, or None.
        checkpointer: ``(state, step) -> path`` that saves :meth:`state_dict`, or None.
        wall_s: wall time already spent on this run (resumes).
    """

    def __init__(self, agent: Any, envs: EnvBundle, sink: LogSink, settings: RunConfig, *,
                 step: int = 0, control: ControlFile | None = None,
                 evaluator: Callable[[Any, EnvBundle], dict[str, float]] | None = None,
                 checkpointer: Callable[[dict[str, Any], int], Path] | None = None,
                 wall_s: float = 0.0):
        self.agent, self.envs, self.sink, self.settings = agent, envs, sink, settings
        self.step = self.origin = step
        self.control, self.evaluator, self.checkpointer = control, evaluator, checkpointer
        self.wall_s = wall_s
        self.cpu_s = 0.0
        """CPU seconds of this process in :meth:`run` (all threads), for benchmarks on a shared
        machine where wall time measures the other processes too."""
        self.stepper = VectorStepper(envs.env)
        self.recent_returns: deque[float] = deque(maxlen=100)
        self.recent_metrics: deque[dict[str, float]] = deque(maxlen=100)
        self.progress_keys = tuple(envs.env.metadata.get("progress_info", ()))
        self.last_eval: dict[str, float] = {}
        self.last_metrics: dict[str, float] = {}
        self.last_checkpoint: Path | None = None
        self.stopped = False
        self.stop_requested: str | None = None
        """Set (e.g. by a signal handler) to end :meth:`run` after the current step."""
        self._t_run: float | None = None
        self._apply_env_side({"gamma"})

    # -- the loop ------------------------------------------------------------------------------
    def run(self, until: int | None = None) -> dict[str, Any]:
        """Step until the clock reaches ``until`` (default ``settings.steps``) or a ``stop``
        command; return what happened (steps, wall time, sps, last metrics, mean return)."""
        s, agent = self.settings, self.agent
        until = s.steps if until is None else until
        n = self.stepper.n
        if self.stepper.obs is None:  # a resumed run does not replay its first episodes' seeds
            self.stepper.reset(agent, seed=s.seed + self.step - self.origin)
        next_boundary = self.step + s.log_every
        next_log = self.step  # on-policy: log the first update, then every log_every steps
        next_eval = self.step + s.eval_every if s.eval_every and self.evaluator else None
        next_ckpt = self.step + s.checkpoint_every if s.checkpoint_every else None
        ckpt_period = 60.0 * getattr(s, "checkpoint_minutes", 0.0)
        next_ckpt_t = time.monotonic() + ckpt_period if ckpt_period > 0 else None
        t0, c0, step0 = time.perf_counter(), time.process_time(), self.step
        self._t_run = t0
        bar = _progress(s, until, self.step)
        self._advance()
        while self.step < until and not self.stopped and self.stop_requested is None:
            self.step += n
            tr, info = self.stepper.step(agent, self.step)
            due = agent.observe(tr)
            for e in finished_episodes(info):
                self.recent_returns.append(e.ret)
                self.recent_metrics.append(e.metrics)
                self.sink.scalars({"charts/episode_return": e.ret, "charts/episode_length": e.length,
                                   **{f"episode/{k}": v for k, v in e.metrics.items()}}, self.step)
            boundary = due if agent.on_policy else self.step >= next_boundary
            if due or boundary:
                self._advance()
            if boundary:
                next_boundary = self.step + s.log_every
                if self.control is not None:
                    self.poll_control()
            if due:
                self.last_metrics = agent.update()
                self._check_finite(self.last_metrics)
            # every update of an on-policy agent is a boundary (A2C: every 40 steps), but its
            # metrics are written at most every log_every steps: a TensorBoard write of every
            # scalar at every A2C update took 12% of a CartPole run
            if boundary and (not agent.on_policy or self.step >= next_log):
                next_log = self.step + s.log_every
                sps = (self.step - step0) / max(time.perf_counter() - t0, 1e-9)
                hp = {f"hparams/{k}": float(v) for k, v in agent.hparam_values().items()}
                self.sink.scalars({**self.last_metrics, **hp, "charts/sps": sps}, self.step)
                if bar is not None:
                    bar.update(self.step - bar.n)
                    ret = {"ret": f"{self.recent_return():.4g}"} if self.recent_returns else {}
                    bar.set_postfix(sps=f"{sps:.0f}", **ret, **self._progress_info(info))
            if next_eval is not None and self.step >= next_eval:
                next_eval += s.eval_every
                self.evaluate()
            # checkpoints at iteration boundaries (a whole rollout trained): every
            # checkpoint_every steps and every checkpoint_minutes, whichever comes first
            if boundary and self.checkpointer and self.step < until and (
                    (next_ckpt is not None and self.step >= next_ckpt)
                    or (next_ckpt_t is not None and time.monotonic() >= next_ckpt_t)):
                if next_ckpt is not None:
                    next_ckpt = self.step + s.checkpoint_every
                if next_ckpt_t is not None:
                    next_ckpt_t = time.monotonic() + ckpt_period
                self.checkpoint()
        if bar is not None:
            bar.update(self.step - bar.n)
            bar.close()
        wall = time.perf_counter() - t0
        self.wall_s += wall
        self.cpu_s += time.process_time() - c0
        self._t_run = None
        return {"steps": self.step, "wall_s": wall, "sps": (self.step - step0) / max(wall, 1e-9),
                "metrics": dict(self.last_metrics), "train_return_mean_100": self.recent_return(),
                "stopped": self.stopped}

    def _progress_info(self, info: dict[str, Any]) -> dict[str, str]:
        """The environment's live figures it asks the progress bar to show
        (``metadata["progress_info"]``), averaged over the environments."""
        return {k: f"{float(np.mean(info[k])):,.4g}" for k in self.progress_keys if k in info}

    def recent_metrics_mean(self) -> dict[str, float]:
        """Each episode metric's mean over the last 100 training episodes that reported it."""
        names = {k for m in self.recent_metrics for k in m}
        return {k: float(np.mean([m[k] for m in self.recent_metrics if k in m]))
                for k in sorted(names)}

    def recent_return(self) -> float:
        """Mean raw return of the last 100 training episodes (nan before the first ends)."""
        return float(np.mean(self.recent_returns)) if self.recent_returns else float("nan")

    def _check_finite(self, metrics: dict[str, float]) -> None:
        bad = [k for k, v in metrics.items() if k.startswith("losses/") and not np.isfinite(v)
               and k != "losses/explained_variance"]
        if bad:
            raise FloatingPointError(f"step {self.step}: non-finite {', '.join(bad)}; "
                                     f"last checkpoint: {self.last_checkpoint}")

    # -- changes -------------------------------------------------------------------------------
    def _advance(self) -> None:
        """Move the agent's schedules to the clock; apply the environment side of changes."""
        self._apply_env_side(set(self.agent.advance(self.step)))

    def _apply_env_side(self, names: set[str]) -> None:
        """What a changed value means for the environments the runner owns: a new ``gamma``
        reaches the reward normaliser's discounted-return accumulator (every algorithm)."""
        values = self.agent.hparam_values()
        if "gamma" in names and "gamma" in values:
            self.envs.set_gamma(float(values["gamma"]))

    def apply_change(self, name: str, value: Any, source: str) -> Change:
        """The one door for a change from outside (control file, tuning, code): set it on the
        agent, apply its environment side, record it once. HParamError leaves it unchanged."""
        ch = self.agent.set_hparam(name, value, source)
        ch = Change(self.step, ch.field, ch.old, ch.new, ch.source)
        self._apply_env_side({name})
        self.sink.change(ch)
        self.sink.scalars({f"hparams/{name}": float(self.agent.hparam_values()[name])}, self.step)
        return ch

    def poll_control(self) -> list[Change]:
        """Read the control file if it changed (and settled); apply the values that changed,
        refuse what is invalid (a rejection with its reason, never an exception), and run a
        new command. The file is never rewritten: it stays as the user wrote it."""
        assert self.control is not None, "poll_control needs a control file"
        upd = self.control.poll()
        if upd is None:
            return []
        self._advance()  # an edit takes effect (and a new schedule starts) at the clock's step
        applied: list[Change] = []
        for fld, reason in upd.errors:
            self.sink.rejection(self.step, fld, None, reason)
        current = self.agent.hparam_schedules()
        for name in upd.changed:
            value = upd.hparams[name]
            try:
                if name in current and same_value(value, current[name]):
                    continue
                applied.append(self.apply_change(name, value, "control"))
            except HParamError as e:
                self.sink.rejection(self.step, name, value, str(e))
            except Exception as e:  # whatever the value does, the run goes on without it
                self.sink.rejection(self.step, name, value,
                                    f"{name}: {brief(value)} could not be applied "
                                    f"({type(e).__name__}: {brief(str(e))})")
        if upd.command == "checkpoint" and self.checkpointer is not None:
            self.checkpoint()
        elif upd.command == "evaluate" and self.evaluator is not None:
            self.evaluate()
        elif upd.command == "stop":
            self.stopped = True
        return applied

    # -- evaluation and checkpoints ------------------------------------------------------------
    def evaluate(self) -> dict[str, float]:
        """Run the evaluator given to the runner and record its result."""
        assert self.evaluator is not None, "evaluate needs an evaluator"
        self.last_eval = self.evaluator(self.agent, self.envs)
        self.sink.evaluation(self.last_eval, self.step)
        return self.last_eval

    def state_dict(self) -> dict[str, Any]:
        """Agent, normaliser statistics, clock, wall time and random-number generators."""
        running = 0.0 if self._t_run is None else time.perf_counter() - self._t_run
        return {"agent": self.agent.state_dict(), "norm": self.envs.norm_state(),
                "step": self.step, "wall_s": self.wall_s + running,
                "control": None if self.control is None else self.control.state_dict(),
                "rng": {"torch": torch.get_rng_state(), "numpy": np.random.get_state(),
                        "python": random.getstate()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict`: agent, normalisers, clock, wall time, RNGs."""
        self.agent.load_state_dict(state["agent"])
        self.envs.load_norm_state(state["norm"])
        self.step = int(state["step"])
        self.wall_s = float(state.get("wall_s", 0.0))
        rng = state["rng"]
        torch.set_rng_state(rng["torch"])
        np.random.set_state(rng["numpy"])
        random.setstate(rng["python"])
        if self.control is not None and state.get("control"):
            self.control.load_state_dict(state["control"])
        self._apply_env_side({"gamma"})

    def checkpoint(self) -> Path:
        """Save :meth:`state_dict` through the checkpointer given to the runner."""
        assert self.checkpointer is not None, "checkpoint needs a checkpointer"
        self.last_checkpoint = self.checkpointer(self.state_dict(), self.step)
        return self.last_checkpoint


def _progress(run: RunConfig, total: int, start: int):
    if not run.progress:
        return None
    from tqdm import tqdm

    return tqdm(total=total, initial=start, unit="step", dynamic_ncols=True, mininterval=1.0)
