"""A trial is a run: :func:`train_and_evaluate` trains one seed exactly as ``python cli.py
train`` does (same seeding, same evaluations) with a :class:`TrialSink` that hands every
periodic evaluation to the trial; :class:`SeedObjective` scores a trial by the median over seeds
(docs/guide/tuning.md, eq. (3)) and turns a diverged or failed run into a pruned trial with its
reason."""

from __future__ import annotations

import dataclasses
import math
import os
import socket
import statistics
from collections.abc import Callable
from typing import Any

import optuna

from rlcore.config import RunConfig, config_to_dict, resolve_configs, resolved_env_kwargs
from rlcore.hparams import Change
from rlcore.tune.space import parse_space, suggest
from rlcore.tune.spec import TuneSpec

__all__ = ["TrialSink", "train_and_evaluate", "trial_configs", "metric_value", "SeedObjective",
           "TrialObjective", "mark_trial", "report", "reproducible_config", "Diverged"]


class Diverged(FloatingPointError):
    """An evaluation that is not a finite number."""


class TrialSink:
    """A log sink for a tuning trial: keeps nothing but the evaluations and hands each one to
    ``on_eval(result, step)`` (which reports it to the trial and may raise ``TrialPruned``)."""

    def __init__(self, on_eval: Callable[[dict[str, Any], int], None]):
        self.on_eval = on_eval
        self.evaluations: list[tuple[int, dict[str, Any]]] = []

    def scalars(self, values: dict[str, float], step: int) -> None:
        """Dropped: a trial keeps only its evaluations."""

    def change(self, change: Change) -> None:
        """Dropped (a trial's settings are fixed when it starts)."""

    def rejection(self, step: int, field: str, value: Any, reason: str) -> None:
        """Dropped."""

    def evaluation(self, result: dict[str, Any], step: int) -> None:
        """Keep the evaluation and hand it to the trial."""
        self.evaluations.append((step, dict(result)))
        self.on_eval(result, step)

    def close(self) -> None:
        """Nothing to release."""


def metric_value(result: dict[str, Any], metric: str) -> float:
    """``result[metric]``, or ``result["eval_metrics"][name]`` for ``eval_metrics.<name>``."""
    head, _, name = metric.partition(".")
    v = result[head][name] if name else result[metric]
    return float(v)


def trial_configs(overrides: dict[str, Any], params: dict[str, Any], seed: int
                  ) -> tuple[RunConfig, Any]:
    """The (run, algorithm) configs of one seed of a trial: the study's settings, the trial's
    values, the seed, no progress bar."""
    return resolve_configs({**overrides, **params, "seed": seed, "progress": False})


# --8<-- [start:train-and-evaluate]
def train_and_evaluate(run: RunConfig, algo_cfg: Any, on_eval: Callable[[dict, int], None],
                       eval_run: RunConfig | None = None) -> dict[str, Any]:
    """Train one run as ``python cli.py train`` does, without a folder, and return its final
    evaluation (on ``eval_run``'s environments when given: a validation window).

    The seeding, the environments, the agent and the runner's periodic evaluations are those of
    :class:`rlcore.training.TrainingRun`, so ``train --config best.yaml`` repeats the trial's
    first seed. Every evaluation goes to ``on_eval`` through a :class:`TrialSink`.
    """
    import torch

    from rlcore.runner import Runner, build_agent, build_envs, make_evaluator, resolve_device, seed_everything

    run = dataclasses.replace(run, env_kwargs=resolved_env_kwargs(run))
    torch.set_num_threads(max(1, run.torch_threads))
    device = resolve_device(run.device)
    seed_everything(run.seed)
    envs = build_envs(run, algo_cfg)
    try:
        agent = build_agent(run, algo_cfg, envs, device)
        sink = TrialSink(on_eval)
        runner = Runner(agent, envs, sink, run, evaluator=make_evaluator(run, algo_cfg))
        runner.run(run.steps)
        if eval_run is None:
            return runner.evaluate()
        held_out = dataclasses.replace(eval_run, env_kwargs=resolved_env_kwargs(eval_run))
        result = make_evaluator(held_out, algo_cfg)(agent, envs)
        sink.evaluation(result, runner.step)
        return result
    finally:
        envs.close()
# --8<-- [end:train-and-evaluate]


def mark_trial(trial: optuna.Trial) -> None:
    """Record which process runs the trial (a resumed study retries the trials of dead ones)."""
    trial.set_user_attr("host", socket.gethostname())
    trial.set_user_attr("pid", os.getpid())


class TrialObjective:
    """What every objective does around its score: mark the trial, draw its values, and turn a
    run that diverges (non-finite loss or evaluation) or fails into a pruned trial with the
    reason in its ``reason`` attribute. Subclasses give ``_score(trial, params)``."""

    pruner = "median"
    """The pruner that suits this objective when the user names none."""

    def __init__(self, spec: TuneSpec):
        self.spec = spec
        self.space = parse_space(spec.space, spec.overrides.get("algo", "ppo"), "space")

    def _score(self, trial: optuna.Trial, params: dict[str, Any]) -> float:
        raise NotImplementedError

    def __call__(self, trial: optuna.Trial) -> float:
        """Run the trial; return its score or raise ``TrialPruned``."""
        mark_trial(trial)
        params = suggest(trial, self.space)
        try:
            return self._score(trial, params)
        except optuna.TrialPruned as e:
            trial.set_user_attr("reason", str(e))
            raise
        except Exception as e:  # diverged or failed: pruned, with the reason
            reason = (f"diverged: {e}" if isinstance(e, FloatingPointError)
                      else f"failed: {type(e).__name__}: {e}")
            reason = " ".join(reason.split())[:500]
            trial.set_user_attr("reason", reason)
            raise optuna.TrialPruned(reason) from None


class SeedObjective(TrialObjective):
    """Score = the median over ``spec.seeds`` of the final evaluation (eq. (3)).

    Seeds run one after another; the evaluations of seed ``i`` are reported at step
    ``i * steps + step``, so the pruner compares a trial with the others at the same point
    of the same seed.
    """

    def _score(self, trial: optuna.Trial, params: dict[str, Any]) -> float:
        spec, scores, last = self.spec, [], [-1]
        for i, seed in enumerate(spec.seeds):
            run, algo_cfg = trial_configs(spec.overrides, params, seed)
            if i == 0:
                trial.set_user_attr("config", reproducible_config(run, algo_cfg))

            def on_eval(result: dict[str, Any], step: int, i: int = i, seed: int = seed,
                        steps: int = run.steps) -> None:
                """Seed i's evaluation at runner step k, reported at i * steps + k."""
                report(trial, metric_value(result, spec.metric), i * steps + step,
                       f"seed {seed}, step {step}", last)

            scores.append(metric_value(train_and_evaluate(run, algo_cfg, on_eval), spec.metric))
        trial.set_user_attr("seed_scores", scores)
        return float(statistics.median(scores))


def report(trial: optuna.Trial, value: float, step: int, where: str, last: list[int]) -> None:
    """Report ``value`` at ``step`` (once per step); raise ``Diverged`` on a non-finite value,
    ``TrialPruned`` when the pruner says so."""
    if not math.isfinite(value):
        raise Diverged(f"{where}: evaluation {value}")
    if step <= last[0]:
        return
    last[0] = step
    trial.report(value, step)
    if trial.should_prune():
        raise optuna.TrialPruned(f"{where}: {value:.6g} is worse than the pruner's threshold "
                                 "(the median of earlier trials at this step)")


def reproducible_config(run: RunConfig, algo_cfg: Any) -> dict[str, Any]:
    """The config that ``python cli.py train --config`` repeats: the trial's, with the progress
    bar back on and no run id."""
    d = config_to_dict(dataclasses.replace(run, progress=True, run_id=None), algo_cfg)
    return d
