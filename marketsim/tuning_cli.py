"""``python cli.py tune``: an Optuna study (TPE, pruning, several seeds or walk-forward folds),
or population-based training with ``--mode pbt`` (docs/guide/tuning.md).

The engine-generic parts are ``rlcore/tune/``; this command adds the market's one piece, the
fold objective of ``marketsim/evaluation/tune_folds.py`` (``--data``), which is why it lives
here rather than in ``rlcore``.
"""

from __future__ import annotations

import json
import re
import shlex
import sys
from pathlib import Path

import click

from rlcore.config import ALGOS, parse_assignments

__all__ = ["tune"]


def _fail(msg: str) -> None:
    raise click.ClickException(msg)


@click.command()
@click.option("--algo", type=click.Choice(sorted(ALGOS)), default="ppo", help="Algorithm.")
@click.option("--env", "env_id", required=True,
              help="gymnasium id (or module:EnvId, marketsim/...); with --data, the futures "
                   "market on those candles.")
@click.option("--trials", type=int, default=20,
              help="Trials in the study over all workers (complete, pruned and running count).")
@click.option("--steps", type=int, default=100_000, help="Environment steps of each seed's run.")
@click.option("--seeds", type=int, default=3,
              help="Seeds per trial (0..N-1); the score is their median.")
@click.option("--space", "space_file", type=click.Path(dir_okay=False), default=None,
              help="YAML search space (default: the algorithm's, see docs/guide/tuning.md).")
@click.option("--workers", type=int, default=1, help="Worker processes (or Ray tasks).")
@click.option("--backend", type=click.Choice(["local", "ray"]), default="local",
              help="local processes, or Ray tasks (pip install -e \".[ray]\"; $RAY_ADDRESS "
                   "joins a cluster).")
@click.option("--storage", default="",
              help="Database URL (postgresql://user:pw@host:port/db) for several machines, or "
                   "journal:PATH; default: journal.log in the study's folder.")
@click.option("--study", "study_name", default=None,
              help="Study name (default: <algo>-<env>); its folder is <out>/<study>.")
@click.option("--out", default="runs/tune", help="Folder that holds study folders.")
@click.option("--pruner", type=click.Choice(["auto", "median", "wilcoxon", "none"]),
              default="auto", help="auto: median over seeds, wilcoxon over folds (--data).")
@click.option("--startup-trials", type=int, default=5,
              help="Random trials before TPE, and before the pruner acts.")
@click.option("--eval-every", type=int, default=None,
              help="Steps between the evaluations reported to the pruner (default steps/5).")
@click.option("--metric", default="eval_return_mean",
              help="What to maximise: eval_return_mean or eval_metrics.<name>.")
@click.option("--sampler-seed", type=int, default=0, help="TPE's seed (worker w: seed + w).")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
              help="A fixed setting of every trial (as train --set).")
@click.option("--env-arg", "env_args", multiple=True, metavar="KEY=VALUE",
              help="Environment constructor argument (as train --env-arg).")
@click.option("--data", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Candles: score trials on walk-forward folds inside --train-start..--train-end "
                   "(default: none, the score is over seeds).")
@click.option("--train-start", default=None,
              help="With --data: start of the training window (UTC; default: the first bar).")
@click.option("--train-end", default=None,
              help="With --data: end of the training window (UTC, excluded); required there.")
@click.option("--folds", type=int, default=3, help="Validation folds inside the training window.")
@click.option("--val", default="30d", help="Length of each validation window (e.g. 30d).")
@click.option("--test-end", default=None,
              help="With --data, after the study: train the best on the whole training window and "
                   "report its result on --train-end..--test-end (never seen while tuning).")
@click.option("--mode", type=click.Choice(["optuna", "pbt"]), default="optuna",
              help="optuna: a study of independent trials; pbt: population-based training.")
@click.option("--population", type=int, default=4, help="PBT: members.")
@click.option("--pbt-interval", type=int, default=None,
              help="PBT: steps between exploit/explore rounds (default steps/10).")
@click.option("--pbt-quantile", type=float, default=0.25,
              help="PBT: the worst (best) share of the population that copies (is copied).")
@click.option("--no-exploit", is_flag=True,
              help="PBT: never exploit or explore (the fixed baseline at equal compute).")
def tune(algo, env_id, trials, steps, seeds, space_file, workers, backend, storage, study_name,
         out, pruner, startup_trials, eval_every, metric, sampler_seed, sets, env_args, data,
         train_start, train_end, folds, val, test_end, mode, population, pbt_interval,
         pbt_quantile, no_exploit) -> None:
    """Tune hyperparameters: an Optuna study, or population-based training (--mode pbt).

    Each trial is an ordinary run scored by the median of its final evaluations over --seeds
    seeds (or over walk-forward folds inside the training window with --data); the pruner
    stops trials whose periodic evaluations trail. The study's folder holds best.yaml
    (python cli.py train --config best.yaml repeats it), trials.csv, study.html and
    summary.json, whose path is printed last. Run the same command again to resume a killed
    study, or on another machine with the same --storage URL to add workers.
    """
    from rlcore.config import resolve_configs
    from rlcore.tune.space import SpaceError, default_space, load_space, space_to_dict

    for name, v, low in (("--trials", trials, 1), ("--steps", steps, 1), ("--seeds", seeds, 1),
                         ("--workers", workers, 1), ("--population", population, 2)):
        if v < low:
            _fail(f"{name} {v}: expected at least {low}")
    try:
        overrides = {"algo": algo, "env": env_id, "steps": steps,
                     "eval_every": eval_every or max(steps // 5, 1),
                     "env_kwargs": parse_assignments(env_args, "--env-arg"),
                     **parse_assignments(sets, "--set")}
        run, _ = resolve_configs({**overrides, "progress": False})
        if "torch_threads" not in overrides:  # the default, shared by the workers
            overrides["torch_threads"] = max(1, run.torch_threads // workers)
        from rlcore.envs import resolve_env_id

        resolve_env_id(env_id)  # an unknown id fails here, not in every trial
        space = load_space(space_file, algo) if space_file else default_space(algo)
        if mode == "pbt" and not space_file:
            space.pop("n_steps", None)  # a rollout's length stays fixed while members swap
    except (ValueError, TypeError, SpaceError) as e:
        _fail(str(e))
    study_name = study_name or re.sub(r"[^A-Za-z0-9_.-]+", "-", f"{algo}-{env_id}")
    folder = Path(out) / study_name
    command = "python cli.py tune " + shlex.join(sys.argv[2:] if len(sys.argv) > 2 else [])
    if mode == "pbt":
        _pbt(overrides, space_to_dict(space), folder, population, pbt_interval or
             max(steps // 10, 1), sampler_seed, pbt_quantile, not no_exploit, metric)
        return
    _study(overrides, space_to_dict(space), folder, study_name, trials, seeds, storage, pruner,
           startup_trials, sampler_seed, metric, command, workers, backend, data, train_start,
           train_end, folds, val, test_end)


def _pbt(overrides, space, folder, population, interval, seed, quantile, exploit, metric):
    from rlcore.tune.pbt import PBTError, run_pbt

    try:
        res = run_pbt(overrides, space, folder, population, interval, seed, quantile, exploit,
                      metric, echo=click.echo)
    except (PBTError, ValueError, FileExistsError) as e:
        _fail(str(e))
    click.echo(f"[pbt] best {res['best_member']}: {res['best_score']:.6g}")
    click.echo(folder / "pbt.json")


def _study(overrides, space, folder, study_name, trials, seeds, storage, pruner, startup,
           sampler_seed, metric, command, workers, backend, data, train_start, train_end,
           folds, val, test_end):
    from rlcore.io import atomic_write_text
    from rlcore.tune.backends import BackendError, run_workers
    from rlcore.tune.report import write_results
    from rlcore.tune.spec import SEED_OBJECTIVE, TuneSpec
    from rlcore.tune.study import StorageError, claim_of, open_study, reap_dead

    objective, objective_args = SEED_OBJECTIVE, {}
    folder.mkdir(parents=True, exist_ok=True)
    if data:
        from marketsim.evaluation.tune_folds import FOLD_OBJECTIVE, prepare_folds

        if not train_end:
            _fail("--data: give --train-end (the test window after it is never tuned on)")
        saved = folder / "folds.json"
        try:
            objective_args = (json.loads(saved.read_text()) if saved.is_file() else
                              prepare_folds(data, train_start, train_end, folds, val, folder,
                                            overrides["env_kwargs"], test_end))
        except ValueError as e:
            _fail(str(e))
        objective_args["parallel"] = backend  # Ray runs a trial's folds at once
        atomic_write_text(saved, json.dumps(objective_args, indent=2))
        objective = FOLD_OBJECTIVE
        overrides = {**overrides, "eval_every": 0}
    if pruner == "auto":
        pruner = "wilcoxon" if data else "median"
    spec = TuneSpec(folder=str(folder), study=study_name, overrides=overrides, space=space,
                    trials=trials, seeds=tuple(range(seeds)), storage=storage, pruner=pruner,
                    startup_trials=startup, sampler_seed=sampler_seed, metric=metric,
                    objective=objective, objective_args=objective_args, command=command)
    try:
        study = open_study(spec)
    except StorageError as e:
        _fail(str(e))
    with claim_of(spec):  # two commands started at once never both retry one trial
        reaped = reap_dead(study)
    for n in reaped:
        click.echo(f"[tune] trial {n} was left running by a dead worker: retried", err=True)
    try:
        run_workers(spec, workers, backend)
    except BackendError as e:
        _fail(str(e))
    summary = write_results(study, spec)
    if data and test_end and "best_params" in summary:
        from marketsim.evaluation.tune_folds import out_of_sample
        from rlcore.io import atomic_write_json

        oos = out_of_sample(spec, summary["best_params"])
        atomic_write_json(folder / "out_of_sample.json", oos)
        click.echo(f"[tune] out of sample ({oos['test_window'][0]} .. {test_end}): "
                   f"{oos['score']:.6g}")
    c = summary["trials"]
    best = (f"best {summary['best_value']:.6g} (trial {summary['best_trial']}): "
            f"{summary['best_params']}" if "best_value" in summary else "no complete trial")
    click.echo(f"[tune] {c['complete']} complete, {c['pruned']} pruned; {best}")
    click.echo(folder / "summary.json")
