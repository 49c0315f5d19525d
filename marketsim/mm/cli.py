"""``baseline`` click command: run an analytic market-making strategy and write a JSON summary.

The lead mounts it with ``cli.add_command(baseline)``; usage::

    python cli.py baseline --env marketsim/MarketMaking-v0 --strategy as --gamma 0.1 --episodes 1000
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import click

from marketsim.mm.baselines import STRATEGIES, run_baseline
from rlcore.io import atomic_write_text

SUPPORTED_ENVS = ("marketsim/MarketMaking-v0",)


def parse_env_args(pairs: tuple[str, ...]) -> dict[str, Any]:
    """Turn ``key=value`` strings into kwargs; values are read as JSON when they parse."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"expected key=value, got {pair!r}", param_hint="--env-arg")
        try:
            out[key] = json.loads(raw)
        except json.JSONDecodeError:
            out[key] = raw
    return out


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` as JSON to ``path`` atomically (the engine's temp file, fsync, rename)."""
    atomic_write_text(path, json.dumps(data, indent=2))


@click.command("baseline")
@click.option("--env", "env_id", default="marketsim/MarketMaking-v0", show_default=True,
              help="Environment id.")
@click.option("--strategy", type=click.Choice(STRATEGIES), required=True,
              help="as | glft | cj | cara | symmetric (see docs/marketsim/market-making.md).")
@click.option("--gamma", type=float, default=0.1, show_default=True, help="Risk aversion.")
@click.option("--episodes", type=int, default=1000, show_default=True,
              help="Episodes to average over.")
@click.option("--env-arg", "env_args", multiple=True, help="Environment kwarg as key=value.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Episode i uses seed + i.")
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Run folder (default runs/baseline-<strategy>-<timestamp>).")
def baseline(env_id: str, strategy: str, gamma: float, episodes: int, env_args: tuple[str, ...],
             seed: int, out: str | None) -> None:
    """Run an analytic market-making baseline and write summary.json into a run folder."""
    if env_id not in SUPPORTED_ENVS:
        raise click.BadParameter(f"baselines exist for {SUPPORTED_ENVS}, got {env_id!r}",
                                 param_hint="--env")
    kwargs = parse_env_args(env_args)
    try:
        summary = run_baseline(strategy, gamma, episodes, seed=seed, **kwargs)
    except (TypeError, ValueError) as err:
        raise click.UsageError(str(err)) from err
    summary["env"] = env_id
    stamp = time.strftime("%Y%m%d-%H%M%S")
    folder = Path(out) if out else Path("runs") / f"baseline-{strategy}-{stamp}"
    path = folder / "summary.json"
    write_json_atomic(path, summary)
    click.echo(json.dumps({key: summary[key] for key in
                           ("pnl_mean", "pnl_std", "inventory_std", "spread_mean", "reward_mean",
                            "episodes")}))
    click.echo(str(path))
