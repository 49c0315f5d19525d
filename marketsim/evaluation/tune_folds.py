"""Tuning on a market without looking at its test window: walk-forward folds inside the training
window (docs/guide/tuning.md, "No tuning on the test window").

The training window ``[start, end)`` is cut into ``k`` validation windows of length ``val`` at
its end; fold ``i`` trains on every bar before its validation window (an expanding window) and
is scored on the validation window by deterministic evaluation episodes. A trial's score is the
median over folds (eq. (4)); each fold's score is reported at step ``i``, which is what
``WilcoxonPruner`` compares trial against trial. The test window after ``end`` is touched once,
after the study, by :func:`out_of_sample`.
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

import optuna
import pandas as pd

from rlcore.tune.objective import (
    TrialObjective,
    metric_value,
    report,
    reproducible_config,
    train_and_evaluate,
    trial_configs,
)
from rlcore.tune.spec import TuneSpec

__all__ = ["FOLD_OBJECTIVE", "prepare_folds", "FoldObjective", "fold_score", "out_of_sample"]

FOLD_OBJECTIVE = "marketsim.evaluation.tune_folds:FoldObjective"
"""The ``TuneSpec.objective`` of a fold study."""


def _warmup(env_args: dict[str, Any]) -> int:
    """Bars of history the environment's features need before the first traded bar."""
    from marketsim.futures.config import FuturesConfig

    cfg = FuturesConfig.from_kwargs(**{k: v for k, v in env_args.items()
                                       if k not in ("data", "funding", "data_seed")})
    return cfg.window + cfg.vol_window


def _write(df: pd.DataFrame, path: Path) -> str:
    from marketsim.data.store import frame_to_parquet_bytes
    from rlcore.io import atomic_write_bytes

    atomic_write_bytes(path, frame_to_parquet_bytes(df))
    return str(path)


def prepare_folds(data: str, start: str | None, end: str, folds: int, val: str,
                  folder: str | Path, env_args: dict[str, Any] | None = None,
                  test_end: str | None = None) -> dict[str, Any]:
    """Write each fold's train and validation files (and the test window's, when ``test_end``
    is given) under ``<folder>/folds/``; return the fold objective's settings. ValueError when
    a fold would have fewer bars than the environment's feature window."""
    from marketsim.data import load_candles
    from marketsim.evaluation.backtest import slice_candles
    from marketsim.evaluation.walkforward import parse_duration

    if folds < 1:
        raise ValueError(f"--folds {folds}: expected at least 1")
    width = parse_duration(val, "--val")
    all_bars = load_candles(data)
    df = slice_candles(all_bars, start, end)
    warm = _warmup(env_args or {})
    if len(df) == 0:
        raise ValueError(f"--data {data}: no bars between --train-start {start} and "
                         f"--train-end {end}")
    out = Path(folder) / "folds"
    out.mkdir(parents=True, exist_ok=True)
    stop = df.index[-1] + (df.index[-1] - df.index[-2])
    rows = []
    for i in range(folds):
        v0 = stop - (folds - i) * width
        train = df[df.index < v0]
        first = int((df.index >= v0).argmax())
        valid = df.iloc[max(first - warm, 0):]
        valid = valid[valid.index < v0 + width]
        if len(train) < 4 * warm or len(valid) < 2 * warm:
            raise ValueError(f"--folds {folds} --val {val}: fold {i} has {len(train)} train and "
                             f"{len(valid)} validation bars; the environment needs at least "
                             f"{4 * warm} and {2 * warm} (fewer folds, a shorter --val or a "
                             "longer training window)")
        rows.append({"fold": i, "train": _write(train, out / f"fold{i}_train.parquet"),
                     "val": _write(valid, out / f"fold{i}_val.parquet"),
                     "val_start": v0.isoformat(), "val_end": (v0 + width).isoformat()})
    settings: dict[str, Any] = {"folds": rows, "data": data, "start": start, "end": end}
    settings["full_train"] = _write(df, out / "train.parquet")
    if test_end:
        first = int((all_bars.index >= pd.Timestamp(stop)).argmax())
        test = all_bars.iloc[max(first - warm, 0):]
        test = test[test.index < pd.Timestamp(test_end, tz="UTC")]
        settings["test"] = _write(test, out / "test.parquet")
        settings["test_window"] = [stop.isoformat(), test_end]
    return settings


def _with_data(overrides: dict[str, Any], path: str) -> dict[str, Any]:
    return {**overrides, "env_kwargs": {**dict(overrides.get("env_kwargs") or {}), "data": path}}


class FoldObjective(TrialObjective):
    """Score = the median over folds of the validation evaluation (eq. (4)); one seed per fold
    (the study's first). Diverged or failed folds prune the trial with the reason."""

    pruner = "wilcoxon"
    """Fold scores are paired instances: the Wilcoxon signed-rank test compares them."""

    def _score(self, trial: optuna.Trial, params: dict[str, Any]) -> float:
        spec, args, last, scores = self.spec, self.spec.objective_args, [-1], []
        seed = spec.seeds[0]
        jobs = [(spec.overrides, params, seed, f, spec.metric) for f in args["folds"]]
        if args.get("parallel") == "ray":  # every fold at once, as Ray tasks
            import ray

            task = ray.remote(num_cpus=1)(fold_score)
            pending = [task.remote(*j) for j in jobs]
            results = (ray.get(p) for p in pending)
        else:
            results = (fold_score(*j) for j in jobs)
        for f, score in zip(args["folds"], results):
            report(trial, score, f["fold"], f"fold {f['fold']}", last)
            scores.append(score)
        full, algo_cfg = trial_configs(_with_data(spec.overrides, args["full_train"]), params,
                                       seed)
        trial.set_user_attr("config", reproducible_config(full, algo_cfg))
        trial.set_user_attr("fold_scores", scores)
        return float(statistics.median(scores))


def fold_score(overrides: dict[str, Any], params: dict[str, Any], seed: int,
               fold: dict[str, Any], metric: str) -> float:
    """Train on a fold's train file, return the metric of the evaluation on its validation
    file (a Ray task with ``--backend ray``)."""
    run, algo_cfg = trial_configs(_with_data(overrides, fold["train"]), params, seed)
    held, _ = trial_configs(_with_data(overrides, fold["val"]), params, seed)
    return metric_value(train_and_evaluate(run, algo_cfg, lambda r, s: None, eval_run=held),
                        metric)


def out_of_sample(spec: TuneSpec, params: dict[str, Any]) -> dict[str, Any]:
    """Train ``params`` on the whole training window and evaluate once on the test window
    (reported apart from the study's score; the study never saw these bars)."""
    args = spec.objective_args
    run, algo_cfg = trial_configs(_with_data(spec.overrides, args["full_train"]), params,
                                  spec.seeds[0])
    held, _ = trial_configs(_with_data(spec.overrides, args["test"]), params, spec.seeds[0])
    result = train_and_evaluate(run, algo_cfg, lambda r, s: None, eval_run=held)
    return {"test_window": args["test_window"], "params": params,
            "score": metric_value(result, spec.metric), "evaluation": result}
