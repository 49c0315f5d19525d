"""``python cli.py online RUN_DIR --source replay:PATH --every 60m --speed 600x``.

The command sits on both layers: it parses a candle source of :mod:`marketsim.data.sources`
(``replay:``/``ccxt:``) and hands it to rlcore's market-free :class:`rlcore.continual.OnlineLoop`.
``cli.py`` mounts it.
"""

from __future__ import annotations

from pathlib import Path

import click

from rlcore.config import parse_assignments

__all__ = ["online"]


@click.command(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--source", "source_spec", required=True,
              help="replay:PATH (a stored candle file) or ccxt:EXCHANGE:SYMBOL:TIMEFRAME.")
@click.option("--every", default="60m", show_default=True, help="Time between ticks (s/m/h/d).")
@click.option("--speed", default="max", show_default=True,
              help="Replay speed: 600x plays 60 minutes of data in 6 seconds; max never sleeps.")
@click.option("--train-bars", type=int, default=2880, show_default=True,
              help="Bars in each tick's training window.")
@click.option("--holdout-bars", type=int, default=720, show_default=True,
              help="Newest bars held out to judge the candidate.")
@click.option("--warmup-bars", type=int, default=None,
              help="Replay: bars available at the first tick (default train + holdout).")
@click.option("--episode-length", type=int, default=256, show_default=True,
              help="Episode length in bars (training and hold-out).")
@click.option("--n-envs", type=int, default=4, show_default=True, help="Environments per rollout.")
@click.option("--anchor", type=click.Choice(["none", "l2", "ewc"]), default="none",
              show_default=True, help="Penalty towards the last promoted weights.")
@click.option("--max-ticks", type=int, default=None,
              help="Stop after this many ticks (default: when the source ends).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the online loop.")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
              help="Initial online setting (learning_rate, tick_steps, rehearsal_frac, "
                   "recent_frac, anchor_strength, promote_margin, pause). Repeatable.")
@click.option("--store", "store_root", default=None,
              help="ccxt: data store folder (default: $MARKETSIM_STORE or ./data_store).")
@click.option("--quiet", is_flag=True, help="No per-tick lines.")
def online(run_dir, source_spec, every, speed, train_bars, holdout_bars, warmup_bars,
           episode_length, n_envs, anchor, max_ticks, seed, sets, store_root, quiet) -> None:
    """Keep a trained run learning from new data; resumes if RUN_DIR/online/state.pt exists.

    Prints a summary and, last, the path of RUN_DIR/online/promotions.jsonl.
    """
    from marketsim.data.sources import parse_source
    from rlcore.continual.loop import OnlineConfig, OnlineLoop
    from rlcore.continual.settings import OnlineSettings
    from rlcore.continual.source import parse_duration, parse_speed

    try:
        cfg = OnlineConfig(every=parse_duration(every), speed=parse_speed(speed),
                           train_bars=train_bars, holdout_bars=holdout_bars,
                           warmup_bars=warmup_bars, episode_length=episode_length, n_envs=n_envs,
                           anchor=anchor, max_ticks=max_ticks, seed=seed)
        settings = OnlineSettings(**parse_assignments(sets, "--set"))
        loop = OnlineLoop(run_dir, parse_source(source_spec, store_root), cfg, settings,
                          quiet=quiet).start()
        records = loop.run()
    except (ValueError, TypeError, FileNotFoundError) as e:
        raise click.ClickException(str(e)) from None
    promoted = sum(1 for r in records if r.get("decision") == "promoted")
    click.echo(f"{len(records)} ticks this session, {promoted} promotions, serving v{loop.version}")
    click.echo(str(Path(run_dir) / "online" / "promotions.jsonl"))
