"""``python cli.py online RUN_DIR --source replay:PATH --every 60m --speed 600x``.

The command sits on both layers: it parses a candle source of :mod:`marketsim.data.sources`
(``replay:``/``ccxt:``) and hands it to rlcore's market-free :class:`rlcore.continual.OnlineLoop`.
``cli.py`` mounts it.
"""

from __future__ import annotations

from pathlib import Path

import click
import pandas as pd

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
@click.option("--since", default=None,
              help="ccxt: UTC time of the first bar to fetch when the store has none, e.g. "
                   "2025-03-01T00:00 (default: the warm-up bars before now).")
@click.option("--exchange-url", default=None,
              help="ccxt: base URL that replaces the exchange's REST host (a proxy, a mirror, "
                   "a test server), e.g. http://127.0.0.1:8080 (default: the exchange's own).")
@click.option("--max-tries", type=click.IntRange(min=1), default=5, show_default=True,
              help="ccxt: tries of each request before a poll gives up until the next tick "
                   "(waits 1 s, 2 s, 4 s ... at most 30 s between tries).")
@click.option("--quiet", is_flag=True, help="No per-tick lines.")
def online(run_dir, source_spec, every, speed, train_bars, holdout_bars, warmup_bars,
           episode_length, n_envs, anchor, max_ticks, seed, sets, store_root, since,
           exchange_url, max_tries, quiet) -> None:
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
        source = parse_source(source_spec, store_root, _since(since, source_spec, cfg),
                              exchange_url, max_tries)
        loop = OnlineLoop(run_dir, source, cfg, settings, quiet=quiet).start()
    except (ValueError, TypeError, FileNotFoundError) as e:
        raise click.ClickException(str(e)) from None
    restore = _stop_on_signals(loop)
    try:
        records = loop.run()
    finally:
        restore()
    if loop.stopped_by:
        click.echo(f"stopped by {loop.stopped_by} after tick {loop.tick}; the same command "
                   "resumes", err=True)
    promoted = sum(1 for r in records if r.get("decision") == "promoted")
    click.echo(f"{len(records)} ticks this session, {promoted} promotions, serving v{loop.version}")
    click.echo(str(Path(run_dir) / "online" / "promotions.jsonl"))


def _since(text: str | None, spec: str, cfg) -> pd.Timestamp | None:
    """``--since`` as a UTC time; for a ccxt source without it, enough bars before now for the
    first tick's windows (warm-up, else train + hold-out)."""
    from marketsim.data.timeframe import timeframe_to_timedelta

    if text is not None:
        try:
            t = pd.Timestamp(text)
        except ValueError:
            raise ValueError(f"--since {text!r}: expected a UTC time such as 2025-03-01T00:00"
                             ) from None
        return t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")
    parts = str(spec).split(":")
    if parts[0] != "ccxt" or len(parts) != 4:
        return None
    bars = cfg.warmup_bars or (cfg.train_bars + cfg.holdout_bars)
    bar = timeframe_to_timedelta(parts[3])
    return (pd.Timestamp.now(tz="UTC") - bars * bar).floor(bar)


def _stop_on_signals(loop):
    """SIGINT/SIGTERM finish the tick in progress, then stop (a second one acts as usual);
    returns the function that restores the previous handlers."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

    def on_signal(signum, frame):
        for sig, old in previous.items():
            signal.signal(sig, old)
        loop.stopped_by = signal.Signals(signum).name
        loop.request_stop()

    for sig in previous:
        signal.signal(sig, on_signal)
    return lambda: [signal.signal(sig, old) for sig, old in previous.items()]
