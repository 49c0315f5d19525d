"""Click commands ``backtest``, ``walkforward`` and ``compare`` (mounted by the top-level cli.py).

Each prints the path of its JSON report as the last line of output.
"""

from __future__ import annotations

import time
from pathlib import Path

import click

from rlcore.config import ALGOS, parse_assignments

__all__ = ["backtest", "walkforward", "compare", "COMMANDS"]

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


MIN_DAYS_HELP = ("Shortest window (UTC days) whose annualised metrics (annual return and "
                 "volatility, Sharpe, Sortino, Calmar) are shown; shorter: n/a with the raw "
                 "figure.")


def _min_days_option(f):
    from marketsim.evaluation.present import MIN_ANNUAL_DAYS

    return click.option("--min-annual-days", "min_days", type=click.FloatRange(min=0),
                        default=MIN_ANNUAL_DAYS, show_default=True, help=MIN_DAYS_HELP)(f)


def _float_list(text: str | None) -> list[float] | None:
    if text is None:
        return None
    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise click.BadParameter(f"{text!r}: expected comma-separated numbers, e.g. 0.7,0.3",
                                 param_hint="--weights") from None


@click.command(context_settings=CONTEXT)
@click.argument("run_dirs", nargs=-1, required=True,
                type=click.Path(exists=True, file_okay=False))
@click.option("--data", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Candle file (CSV/CSV.gz/JSON/Parquet, as marketsim.data reads); "
                   "give it or --stress.")
@click.option("--stress", type=click.Choice(["flash-crash-2017", "covid-2020", "ftx-2022",
                                             "luna-2022"]), default=None,
              help="A named stress window instead of --data (real data when available).")
@click.option("--data-dir", type=click.Path(file_okay=False), default=None,
              help="Where --stress looks for the shared data (default ../shared/data).")
@click.option("--start", default=None,
              help="First bar (UTC), e.g. 2021-05-01 (default: the data's first).")
@click.option("--end", default=None, help="End (exclusive, UTC; default: the data's end).")
@click.option("--weights", default=None,
              help="With several RUN_DIRS: blend weights, e.g. 0.7,0.3 (default equal).")
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Output folder (default RUN_DIR/backtest/<data name>).")
@_min_days_option
def backtest(run_dirs, data, stress, data_dir, start, end, weights, out, min_days) -> None:
    """Backtest RUN_DIR (several: their blend) deterministically over a data range; writes
    report.json, equity.csv, backtest.png and report.html; prints report.json's path last."""
    from marketsim.evaluation.backtest_report import run_backtest

    try:
        path = run_backtest(list(run_dirs), data=data, start=start, end=end, out=out,
                            weights=_float_list(weights), stress=stress, data_dir=data_dir,
                            min_annual_days=min_days, progress=True)
    except (ValueError, TypeError, FileNotFoundError, RuntimeError) as e:
        raise click.ClickException(str(e)) from None
    click.echo(str(path))


@click.command(context_settings=CONTEXT)
@click.option("--algo", "algos", multiple=True, type=click.Choice(sorted(ALGOS)),
              help="Algorithm; repeat to compare several (default ppo).")
@click.option("--env", "env_id", default="marketsim/CryptoFutures-v0", show_default=True,
              help="Environment trained and tested on (the futures market).")
@click.option("--data", type=click.Path(exists=True, dir_okay=False), required=True,
              help="Candle file (CSV/CSV.gz/JSON/Parquet).")
@click.option("--train", "train_w", default="60d", show_default=True, help="Train window.")
@click.option("--test", "test_w", default="30d", show_default=True, help="Test window.")
@click.option("--step", "step_w", default="30d", show_default=True, help="Slide (>= --test).")
@click.option("--steps", type=int, default=20_000, show_default=True,
              help="Training steps per fold and algorithm.")
@click.option("--start", default=None,
              help="Use data from this time (UTC; default: the data's first bar).")
@click.option("--end", default=None, help="Use data before this time (UTC; default: all).")
@click.option("--max-folds", type=int, default=None,
              help="Stop after this many folds (default: as many as the data holds).")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
              help="Run or algorithm setting for every fold's training. Repeatable.")
@click.option("--env-arg", "env_args", multiple=True, metavar="KEY=VALUE",
              help="Environment keyword for training and testing. Repeatable.")
@click.option("--workers", type=int, default=1, show_default=True,
              help="Parallel processes (spawn) for the folds.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seed of every fold's training (and of the Sharpe bootstrap).")
@click.option("--seeds", "seeds", type=int, multiple=True,
              help="Train every algorithm with each of these seeds (repeat; each is a "
                   "strategy <algo>-s<seed>). Default: --seed only.")
@click.option("--ensemble", is_flag=True,
              help="Also test the blend of each fold's agents (mean target position).")
@click.option("--align", type=click.Choice(["start", "end"]), default="start",
              show_default=True,
              help="Folds from the data's first bar, or back from its last bar.")
@click.option("--validation", default=None,
              help="Validation span at the end of each training window (e.g. 90d): agents "
                   "train before it, and the strategy 'validated' trades the one with the best "
                   "validation return after costs if positive, else stays flat (eqs. (17)-(18)); "
                   "default none: agents train on the whole window, no 'validated' strategy.")
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Output folder (default runs/walkforward-<UTC time>).")
@_min_days_option
def walkforward(algos, env_id, data, train_w, test_w, step_w, steps, start, end, max_folds,
                sets, env_args, workers, seed, seeds, ensemble, align, validation, out,
                min_days) -> None:
    """Walk-forward analysis: train on each window, test on the next, slide; prints the path
    of walkforward.json last."""
    from marketsim.evaluation.walkforward import WalkForwardSpec, run_walkforward

    if workers < 1:
        raise click.BadParameter(f"{workers}: expected >= 1", param_hint="--workers")
    if out is None:
        out = str(Path("runs") / f"walkforward-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}")
    try:
        s = {"eval_episodes": 2, "eval_envs": 1, **parse_assignments(sets, "--set")}
        spec = WalkForwardSpec(data=str(data), out=out, algos=tuple(algos) or ("ppo",),
                               env=env_id, train=train_w, test=test_w, step=step_w,
                               steps=steps, sets=tuple(sorted(s.items())),
                               env_args=tuple(sorted(parse_assignments(env_args,
                                                                       "--env-arg").items())),
                               start=start, end=end, max_folds=max_folds, workers=workers,
                               seed=seed, seeds=tuple(seeds), ensemble=ensemble,
                               align=align, validation=validation)
        path = run_walkforward(spec, progress=lambda line: click.echo(line, err=True),
                               min_days=min_days)
    except (ValueError, TypeError) as e:
        raise click.ClickException(str(e)) from None
    click.echo(str(path))


@click.command(context_settings=CONTEXT)
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False))
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Output folder (default runs/compare-<UTC time>).")
@_min_days_option
def compare(paths, out, min_days) -> None:
    """Put several runs' backtest metrics in one table (printed, and in compare.html) and one
    plot; prints compare.json's path last. PATHS: backtest output folders or run folders (all
    their backtests)."""
    from marketsim.evaluation.compare import compare_text, run_compare

    if out is None:
        out = str(Path("runs") / f"compare-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}")
    try:
        path = run_compare(list(paths), out, min_days)
    except (ValueError, KeyError) as e:
        raise click.ClickException(str(e)) from None
    click.echo(compare_text(path))
    click.echo(str(path))


COMMANDS = (backtest, walkforward, compare)
"""Commands for the top-level cli: ``for c in COMMANDS: cli.add_command(c)``."""
