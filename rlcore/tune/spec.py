"""What a study is: :class:`TuneSpec`, the picklable description every worker (a process, a Ray
task, a second machine) builds the same study and objective from."""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

__all__ = ["TuneSpec", "load_objective", "SEED_OBJECTIVE"]

SEED_OBJECTIVE = "rlcore.tune.objective:SeedObjective"
"""The default objective: the median over seeds of the final evaluation."""


@dataclass(frozen=True)
class TuneSpec:
    """A study: where it is stored, what a trial trains, how it is scored and pruned."""

    folder: str
    """The study's folder: journal, best.yaml, trials.csv, study.html, summary.json."""
    study: str
    """The study's name in its storage."""
    overrides: dict[str, Any]
    """The settings every trial starts from (``algo``, ``env``, ``steps``, ``--set`` values ...),
    as a flat mapping for :func:`rlcore.config.resolve_configs`."""
    space: dict[str, dict[str, Any]]
    """The search space in its YAML form (:func:`rlcore.tune.space.space_to_dict`)."""
    trials: int = 20
    """Trials in the study, counted over every worker: complete, pruned and running ones."""
    seeds: tuple[int, ...] = (0, 1, 2)
    """The seeds each trial runs (the score is the median of their final evaluations)."""
    storage: str = ""
    """A database URL (``postgresql://...``) or ``journal:PATH``; empty: ``journal.log`` in
    the folder."""
    pruner: str = "median"
    """``median``, ``wilcoxon`` or ``none``."""
    startup_trials: int = 5
    """Trials sampled at random before TPE models the others; also the trials the pruner
    waits for before it prunes."""
    warmup_steps: int = 0
    """Reported steps at which a trial is never pruned (``MedianPruner(n_warmup_steps)``)."""
    sampler_seed: int | None = 0
    """TPE's seed (worker ``w`` uses ``seed + w``); None: random."""
    metric: str = "eval_return_mean"
    """What a trial maximises: ``eval_return_mean`` or ``eval_metrics.<name>``."""
    objective: str = SEED_OBJECTIVE
    """``module:Class`` of the objective: built as ``Class(spec)``, called with a trial."""
    objective_args: dict[str, Any] = field(default_factory=dict)
    """Settings of a custom objective (the fold objective's data, window and folds)."""
    command: str = ""
    """The command line that started the study (saved with the results)."""


def load_objective(spec: TuneSpec) -> Any:
    """Build the objective that ``spec.objective`` names."""
    mod, _, name = spec.objective.partition(":")
    return getattr(importlib.import_module(mod), name)(spec)
