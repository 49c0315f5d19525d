"""``python cli.py models register RUN | list | show NAME | promote NAME | rollback | deploy``.

The registry is a folder of plain files (``--registry``, default ``$MARKETSIM_REGISTRY`` or
``registry/``); see :mod:`marketsim.deploy.registry`. ``deploy`` paper-trades the ``champion``
and ``challenger`` aliases side by side on a replayed candle file (the A/B rule of
:mod:`marketsim.deploy.ab`), with an optional Prometheus exporter. Errors are one line naming
the bad value, never a traceback.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

__all__ = ["models"]

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100, "show_default": True}
_registry_opt = click.option("--registry", "root", default=None,
                             help="Registry folder (default $MARKETSIM_REGISTRY or registry/).")


def _reg(root):
    from marketsim.deploy.registry import Registry

    return Registry(root)


def _guard(fn):
    """Run ``fn``; a ValueError or FileNotFoundError becomes a one-line click error."""
    try:
        return fn()
    except (ValueError, FileNotFoundError) as e:
        raise click.ClickException(str(e)) from None


@click.group(context_settings=CONTEXT)
def models() -> None:
    """Model registry (plain files, offline): register runs, aliases, A/B deployment."""


@models.command()
@click.argument("run_dir")
@click.option("--parent", default=None,
              help="Model (alias, id or run id) this one was trained from; default none.")
@click.option("--alias", default=None, help="Also point this alias (champion, challenger, ...) "
                                            "at the new model; default none.")
@_registry_opt
def register(run_dir, parent, alias, root) -> None:
    """Register a run's latest checkpoint with its config, hparams.yaml, data hash, code
    version and metrics. Prints the model id."""
    reg = _reg(root)
    rec = _guard(lambda: reg.register(run_dir, parent=parent))
    data = rec.manifest["data"]
    click.echo(f"registered {rec.id} from {run_dir} (data sha256 {data['sha256'][:12]}...)")
    if alias:
        old, _ = _guard(lambda: reg.promote(rec.id, alias))
        click.echo(f"{alias}: {old or '-'} -> {rec.id}")
    click.echo(rec.id)


@models.command("list")
@_registry_opt
def list_models(root) -> None:
    """Every model, with its aliases."""
    reg = _reg(root)
    aliases = reg.aliases.read().aliases
    by_id: dict[str, list[str]] = {}
    for a, mid in aliases.items():
        by_id.setdefault(mid, []).append(a)
    rows = reg.list()
    if not rows:
        click.echo(f"no models in {reg.root}")
    for r in rows:
        m = r.manifest
        click.echo(f"{r.id}  {m.get('algo') or '?':4} {m.get('run_id') or m['run']:32} "
                   f"{','.join(sorted(by_id.get(r.id, []))) or '-'}")


@models.command()
@click.argument("name")
@click.option("--path", "path_only", is_flag=True, help="Print only the model's folder.")
@_registry_opt
def show(name, path_only, root) -> None:
    """A model's manifest (NAME: alias, id or id prefix) as JSON."""
    rec = _guard(lambda: _reg(root).get(name))
    if path_only:
        click.echo(str(rec.path))
        return
    click.echo(json.dumps({**rec.manifest, "path": str(rec.path)}, indent=2, sort_keys=True))


@models.command()
@click.argument("name")
@click.option("--to", "alias", default="champion", help="The alias to point at NAME.")
@_registry_opt
def promote(name, alias, root) -> None:
    """Point an alias (champion by default) at model NAME (alias, id or prefix)."""
    old, new = _guard(lambda: _reg(root).promote(name, alias))
    click.echo(f"{alias}: {old or '-'} -> {new}")


@models.command()
@click.option("--alias", default="champion", help="The alias to roll back.")
@_registry_opt
def rollback(alias, root) -> None:
    """Point an alias back at its previous model (removed if it had none)."""
    old, new = _guard(lambda: _reg(root).rollback(alias))
    click.echo(f"{alias}: {old or '-'} -> {new or '-'}")


@models.command()
@click.option("--replay", "replay_path", required=True,
              type=click.Path(exists=True, dir_okay=False), help="Candle file to paper-trade.")
@click.option("--symbol", default="ETH/USDT", help="Market name for the journals.")
@click.option("--timeframe", default="1m", help="Bar length of the file.")
@click.option("--share", type=float, default=0.10, help="Challenger's share of the capital.")
@click.option("--window", type=int, default=240, help="Bars in the comparison window.")
@click.option("--min-bars", type=int, default=60, help="Bars before a statistical rollback.")
@click.option("--threshold", type=float, default=0.20, help="Tolerated drop of Sharpe.")
@click.option("--alpha", type=float, default=0.001, help="PSR below this rolls back.")
@click.option("--max-drawdown", type=float, default=0.15, help="Challenger's hard drawdown cap.")
@click.option("--promote-after", type=int, default=1440, help="Bars before a proposal.")
@click.option("--auto-promote", is_flag=True, help="Promote a proposed challenger at once.")
@click.option("--max-bars", type=int, default=None,
              help="Stop after this many bars (default: the whole file).")
@click.option("--speed", default="max", help="Replay speed: 600x, or max.")
@click.option("--metrics-port", type=int, default=None,
              help="Serve Prometheus metrics on this port (default: no exporter).")
@click.option("--metrics-addr", default="127.0.0.1", help="Address the exporter binds.")
@click.option("--out", "out_dir", default="runs/ab", help="Folder of the journals.")
@_registry_opt
def deploy(replay_path, symbol, timeframe, share, window, min_bars, threshold, alpha,
           max_drawdown, promote_after, auto_promote, max_bars, speed, metrics_port,
           metrics_addr, out_dir, root) -> None:
    """Paper-trade champion and challenger side by side (the challenger on --share of the
    capital) and roll the challenger back when it is worse. Prints the summary's path last."""
    import asyncio

    from marketsim.data import load_candles
    from marketsim.deploy.ab import ABRule
    from marketsim.deploy.deployment import ABDeployment, paper_variant, same_features
    from marketsim.live.feeds import ReplayFeed
    from marketsim.live.journal import Journal
    from marketsim.live.session import bar_ms_of, run_policy
    from rlcore.continual.source import parse_speed
    from rlcore.io import atomic_write_json

    def build():
        rule = ABRule(share=share, window=window, min_bars=min_bars, threshold=threshold,
                      alpha=alpha, max_drawdown=max_drawdown, promote_after=promote_after,
                      auto_promote=auto_promote)
        reg = _reg(root)
        bar_ms = bar_ms_of(timeframe)
        out = Path(out_dir)
        variants, cfgs = [], []
        for name, part in (("champion", 1.0 - share), ("challenger", share)):
            model = reg.get(name)
            decide, cfg, _ = run_policy(model.as_run_dir(out / "models" / name))
            shared = variants[0].trader.window if variants and same_features(cfgs[0], cfg) \
                else None
            variants.append(paper_variant(name, decide, cfg, part, bar_ms, symbol,
                                          out / f"{name}-{model.id}.jsonl", window=shared))
            cfgs.append(cfg)
        rate = parse_speed(speed)
        feed = ReplayFeed(load_candles(replay_path), bar_ms,
                          speed=None if rate == float("inf") else rate)
        return rule, reg, variants, feed, out

    rule, reg, variants, feed, out = _guard(build)
    metrics = server = None
    if metrics_port is not None:
        from marketsim.deploy.exporter import TradingMetrics, serve

        metrics = TradingMetrics()
        server = serve(metrics.registry, metrics_port, metrics_addr)
        click.echo(f"metrics on http://{metrics_addr}:{server.server_port}/metrics")
    dep = ABDeployment(*variants, rule, Journal(out / "ab.jsonl", fsync=False), reg, metrics)
    try:
        summary = asyncio.run(dep.run(feed, max_bars=max_bars))
    finally:
        if server is not None:
            server.shutdown()
    path = atomic_write_json(out / "ab.summary.json", summary)
    d = summary["decision"]
    click.echo(f"{summary['bars']} bars; " + (f"challenger ROLLED BACK at bar {d['bars']}: "
                                              f"{d['reason']}" if d else "challenger kept")
               + ("; proposed for promotion" if summary["proposal"] else ""))
    click.echo(str(path))
