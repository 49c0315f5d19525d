"""Command line: ``python cli.py train|evaluate|control|runs ...`` (and data/baseline commands).

Every command that produces figures writes them as JSON in a run folder and prints that file's
path as its last line, so scripts can chain on it.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import sys
from pathlib import Path

import click

from rlcore.config import ALGOS, RunConfig, parse_assignments

DEFAULT_ENV = "marketsim/CryptoFutures-v0"
"""``train``'s environment when neither ``--env`` nor ``--config`` names one (the README's main job)."""

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100, "show_default": True}
"""Every command: ``-h``, and ``--help`` shows each option's default (subcommands inherit it)."""


class LazyGroup(click.Group):
    """A click group whose market commands are imported only when used (fast ``--help``)."""

    lazy = {"data": "marketsim.data.cli:data", "baseline": "marketsim.mm.cli:baseline",
            "backtest": "marketsim.evaluation.cli:backtest",
            "walkforward": "marketsim.evaluation.cli:walkforward",
            "compare": "marketsim.evaluation.cli:compare", "online": "marketsim.online:online",
            "trade": "marketsim.live.cli:trade", "tune": "marketsim.tuning_cli:tune",
            "models": "marketsim.deploy.cli:models"}

    def list_commands(self, ctx: click.Context) -> list[str]:
        """Eager and lazy command names, sorted."""
        return sorted([*super().list_commands(ctx), *self.lazy])

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        """Import a lazy command on first use."""
        if name in self.lazy:
            mod, _, attr = self.lazy[name].partition(":")
            return getattr(importlib.import_module(mod), attr)
        return super().get_command(ctx, name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """Each command with the first paragraph of its help, whole (click cuts it with ...)."""
        rows = []
        for name in self.list_commands(ctx):
            cmd = self.get_command(ctx, name)
            if cmd is not None and not cmd.hidden:
                text = cmd.short_help or (cmd.help or "").split("\n\n")[0]
                rows.append((name, " ".join(text.split())))
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings=CONTEXT)
def cli() -> None:
    """rlcore + marketsim: train RL agents on gymnasium and market environments."""


def _fail(msg: str) -> None:
    raise click.ClickException(msg)


_RUN = RunConfig()
"""The defaults ``train --help`` shows: the options default to None so that ``--config`` and
``--resume`` can tell a value given from one left out."""


def _show_hparams(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    """``--list-hparams``: print the algorithm's mutable hyperparameters and exit."""
    if not value or ctx.resilient_parsing:
        return
    from rlcore.config import agent_class, resolve_configs
    from rlcore.io import read_yaml

    p = ctx.params
    overrides = dict(read_yaml(p["config_file"]) or {}) if p.get("config_file") else {}
    if p.get("algo"):
        overrides["algo"] = p["algo"]
    try:
        overrides.update(parse_assignments(p.get("sets") or (), "--set"))
        run_cfg, algo_cfg = resolve_configs(overrides)
    except (ValueError, TypeError) as e:
        _fail(str(e))
    click.echo(hparam_table(agent_class(run_cfg.algo).hparam_specs(algo_cfg), algo_cfg,
                            run_cfg.algo))
    ctx.exit(0)


def hparam_table(specs: list, algo_cfg: object, algo: str) -> str:
    """One line per mutable hyperparameter: name, type, bounds, schedulable, current default."""
    def num(x: float | None, inf: str) -> str:
        return inf if x is None else str(int(x)) if s.kind is int else f"{x:g}"

    lines = [f"mutable hyperparameters of {algo}: change them with --set, in control.yaml "
             "(python cli.py control) or Runner.apply_change",
             f"{'name':22} {'type':5} {'bounds':20} {'schedule':8} {'default':16} meaning"]
    derived = False
    for s in specs:
        bounds = (f"{'(' if s.low_open or s.low is None else '['}{num(s.low, '-inf')}, "
                  f"{num(s.high, 'inf')}{')' if s.high is None else ']'}")
        value = getattr(algo_cfg, s.name, None)
        derived |= value is None
        lines.append(f"{s.name:22} {s.kind.__name__:5} {bounds:20} "
                     f"{'yes' if s.schedulable else 'no':8} "
                     f"{'derived*' if value is None else str(value):16} {s.doc}")
    lines.append("bounds: [ ] inclusive, ( ) exclusive; a schedule: 'lin:A->B', 'exp:A->B', "
                 "'cos:A->B' (to the run's end, or over N steps with @N), 'pw:STEP=V,STEP=V'")
    if derived:
        lines.append("* derived from other settings when the agent is built (see the "
                     "algorithm's page in docs/algorithms/)")
    return "\n".join(lines)


def _train_epilog() -> str:
    from rlcore.config import RunConfig

    d = RunConfig()
    return (f"Checkpoints by default every {d.checkpoint_every} steps and every "
            f"{d.checkpoint_minutes:g} minutes, the newest {d.keep_checkpoints} kept "
            f"(--set checkpoint_every={d.checkpoint_every} --set "
            f"checkpoint_minutes={d.checkpoint_minutes:g} --set "
            f"keep_checkpoints={d.keep_checkpoints}). Ctrl-C or SIGTERM saves a checkpoint and "
            "exits; --resume continues from the newest intact checkpoint.")


@cli.command(context_settings=CONTEXT, epilog=_train_epilog())
@click.option("--algo", type=click.Choice(sorted(ALGOS)), default=None, is_eager=True,
              help=f"Algorithm (default {_RUN.algo}).")
@click.option("--env", "env_id", default=None,
              help=f"gymnasium id or module:EnvId (default {DEFAULT_ENV}).")
@click.option("--steps", type=int, default=None,
              help=f"Total environment steps (default {_RUN.steps}).")
@click.option("--seed", type=int, default=None, help=f"Seed (default {_RUN.seed}).")
@click.option("--n-envs", type=int, default=None,
              help=f"Environments stepped together (default {_RUN.n_envs}). SAC and DQN still "
                   "make one gradient step per train_freq environment steps (gradient_steps=-1).")
@click.option("--vec", type=click.Choice(["sync", "async"]), default=None,
              help=f"SyncVectorEnv or AsyncVectorEnv (subprocesses) (default {_RUN.vec}).")
@click.option("--net", type=click.Choice(["mlp", "resmlp", "lstm"]), default=None,
              help="Network: plain MLP, residual LayerNorm MLP, or LSTM (default mlp).")
@click.option("--frame-stack", type=int, default=None,
              help=f"Stack the last K observations (default {_RUN.frame_stack}).")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", is_eager=True,
              help="Any run or algorithm setting; schedules allowed, e.g. "
                   "'learning_rate=lin:0.001->0' (quote it: the shell reads > as a "
                   "redirection). Repeatable; --list-hparams lists the mutable ones.")
@click.option("--env-arg", "env_args", multiple=True, metavar="KEY=VALUE",
              help="Keyword argument of the environment constructor. Repeatable.")
@click.option("--config", "config_file", type=click.Path(exists=True, dir_okay=False),
              is_eager=True, help="YAML file of settings (same keys as --set; --set wins).")
@click.option("--run-id", default=None,
              help="Run folder name under runs/ (default <UTC time>-<algo>-<env>-s<seed>).")
@click.option("--runs-dir", default=None,
              help=f"Folder that holds run folders (default {_RUN.runs_dir}).")
@click.option("--device", default=None,
              help=f"cpu, cuda or auto (default {_RUN.device}). torch runs on "
                   f"{_RUN.torch_threads} thread(s) here for SAC and autograd networks: half "
                   "the usable cores, at most 4; on 1 for the closed form of PPO, A2C and DQN "
                   "with the plain MLP on the CPU (--set torch_threads=N).")
@click.option("--resume", "resume_dir", type=click.Path(exists=True, file_okay=False),
              help="Continue the run in this folder from its last checkpoint.")
@click.option("--no-progress", is_flag=True, help="Hide the progress bar.")
@click.option("--metrics-port", type=int, default=None,
              help="Serve Prometheus metrics of the run on 127.0.0.1 at this port (default: "
                   "none; docs/guide/deployment.md).")
@click.option("--list-hparams", is_flag=True, expose_value=False, callback=_show_hparams,
              help="List the algorithm's mutable hyperparameters (bounds, defaults) and exit.")
def train(algo, env_id, steps, seed, n_envs, vec, net, frame_stack, sets, env_args, config_file,
          run_id, runs_dir, device, resume_dir, no_progress, metrics_port) -> None:
    """Train an agent; prints the path of the run's summary.json last."""
    from rlcore.config import configs_from_dict, resolve_configs
    from rlcore.io import read_yaml
    from rlcore.training import train as run_train

    try:
        if resume_dir:
            if any(v is not None for v in (algo, env_id, seed, n_envs, vec, net, frame_stack,
                                           config_file, run_id, runs_dir)) or sets or env_args:
                _fail("--resume continues a run as configured: only --steps (to extend it), "
                      "--device and --no-progress may be given")
            if not (Path(resume_dir) / "config.yaml").is_file():
                _fail(f"{resume_dir}: not a run folder (no config.yaml); nothing to resume")
            base = read_yaml(Path(resume_dir) / "config.yaml")
            run_cfg, algo_cfg = configs_from_dict(base)
            run_cfg = dataclasses.replace(run_cfg,
                                          steps=steps if steps is not None else run_cfg.steps,
                                          device=device or run_cfg.device,
                                          progress=run_cfg.progress and not no_progress)
        else:
            overrides = {}
            if config_file:
                data = read_yaml(config_file) or {}
                if not isinstance(data, dict):
                    _fail(f"{config_file}: expected a mapping of settings")
                overrides.update(data)
            flags = {"algo": algo, "env": env_id, "steps": steps, "seed": seed,
                     "n_envs": n_envs, "vec": vec, "net": net, "frame_stack": frame_stack,
                     "run_id": run_id, "runs_dir": runs_dir, "device": device}
            overrides.update({k: v for k, v in flags.items() if v is not None})
            if "env" not in overrides and "env" not in (overrides.get("run") or {}):
                overrides["env"] = DEFAULT_ENV
            overrides.update(parse_assignments(sets, "--set"))
            if env_args:
                ek = dict(overrides.get("env_kwargs") or {})
                ek.update(parse_assignments(env_args, "--env-arg"))
                overrides["env_kwargs"] = ek
            if no_progress:
                overrides["progress"] = False
            run_cfg, algo_cfg = resolve_configs(overrides)
        sink = server = None
        if metrics_port is not None:
            from rlcore.prometheus_sink import PrometheusSink

            sink = PrometheusSink(Path(resume_dir).name if resume_dir else run_cfg.run_id or
                                  "train")
            server = sink.serve(metrics_port)
            click.echo(f"metrics on http://127.0.0.1:{server.server_port}/metrics")
        try:
            summary, path = run_train(run_cfg, algo_cfg, resume_dir, resume=bool(resume_dir),
                                      sink=sink)
        finally:
            if server is not None:
                server.shutdown()
    except (ValueError, TypeError, FileNotFoundError, FileExistsError) as e:
        _fail(str(e))
    except (FloatingPointError, RuntimeError, OSError) as e:  # the run failed mid-way
        _fail(f"training failed: {type(e).__name__}: {e}\nsummary.json says status failed; "
              "'python cli.py train --resume RUN_DIR' continues from the last checkpoint")
    if "eval_return_mean" not in summary:  # interrupted: saved without an evaluation
        click.echo(f"{summary['steps']} steps, {summary['sps']:.0f} steps/s, status "
                   f"{summary['status']} (no evaluation)")
    else:
        click.echo(f"eval return {summary.get('eval_return_mean', float('nan')):.2f} "
                   f"+- {summary.get('eval_return_std', float('nan')):.2f} (the reward summed "
                   f"over an episode), {summary['sps']:.0f} steps/s, status {summary['status']}")
    if summary.get("eval_metrics"):
        click.echo(f"eval episodes (mean of {summary.get('eval_episodes', 0)}): "
                   + format_metrics(summary["eval_metrics"], summary.get("eval_metric_units", {})))
    click.echo(str(path))
    if summary["status"] == "interrupted":  # saved: 'train --resume' continues it
        click.echo(f"interrupted by {summary.get('interrupted_by')} at step {summary['steps']}; "
                   "continue with: python cli.py train --resume "
                   f"{Path(path).parent}", err=True)
        sys.exit(143 if summary.get("interrupted_by") == "SIGTERM" else 130)


def format_metrics(metrics: dict[str, float], units: dict[str, str]) -> str:
    """``name value unit`` pairs in the environment's order of units, then the rest."""
    names = [k for k in units if k in metrics] + [k for k in metrics if k not in units]
    parts = []
    for k in names:
        unit = units.get(k, "")
        sep = "" if unit == "%" else " "
        label = k.removesuffix("_pct").replace("_", " ")  # the unit says it is a percentage
        parts.append(f"{label} {metrics[k]:,.2f}{sep}{unit}".rstrip())
    return ", ".join(parts)


@cli.command(context_settings=CONTEXT)
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--episodes", type=int, default=None, help="Episodes (default: the run's setting).")
@click.option("--seed", type=int, default=12345, help="Seed of the evaluation environments.")
@click.option("--stochastic", is_flag=True, help="Sample actions instead of the mode.")
def evaluate(run_dir, episodes, seed, stochastic) -> None:
    """Evaluate a run's latest checkpoint; writes eval.json in the run and prints its path."""
    from rlcore.saved import evaluate_run

    try:
        res, path = evaluate_run(run_dir, episodes, seed, not stochastic)
    except (ValueError, FileNotFoundError) as e:
        _fail(str(e))
    click.echo(f"eval return {res['eval_return_mean']:.2f} +- {res['eval_return_std']:.2f} "
               f"over {res['eval_episodes']} episodes")
    click.echo(str(path))


@cli.command(context_settings=CONTEXT)
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
              help="New value or schedule of a mutable hyperparameter. Repeatable.")
@click.option("--command", type=click.Choice(["checkpoint", "evaluate", "stop"]), default=None,
              help="A command for the running training (default: none).")
@click.option("--show", is_flag=True, help="Print the control file.")
def control(run_dir, sets, command, show) -> None:
    """Edit a running training's control.yaml atomically (values are validated first)."""
    from rlcore.config import agent_class, configs_from_dict
    from rlcore.control import edit_control
    from rlcore.io import read_yaml
    from rlcore.runs import RunDir

    rd = RunDir(run_dir)
    try:
        if sets or command:
            run_cfg, algo_cfg = configs_from_dict(read_yaml(rd.config))
            specs = agent_class(run_cfg.algo).hparam_specs(algo_cfg)
            edit_control(rd.control, specs, parse_assignments(sets, "--set"), command)
    except (ValueError, TypeError, OSError) as e:  # OSError: FileNotFoundError, permissions
        _fail(str(e))
    if show or not (sets or command):
        click.echo(rd.control.read_text())
    click.echo(str(rd.control))


@cli.command(name="runs", context_settings=CONTEXT)
@click.option("--runs-dir", default="runs", show_default=True, help="Folder of run folders.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def runs_cmd(runs_dir, as_json) -> None:
    """List runs with their summaries."""
    from rlcore.runs import run_status

    rows = []
    for d in sorted(Path(runs_dir).glob("*/")):
        summary, status = run_status(d)
        rows.append({"run": d.name, **{k: summary.get(k) for k in
                     ("algo", "env", "steps", "sps", "eval_return_mean")}, "status": status})
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    click.echo(f"{'run':56} {'algo':5} {'steps':>9} {'sps':>7} {'eval':>9}  status")
    for r in rows:
        ev = r["eval_return_mean"]
        click.echo(f"{r['run']:56} {r['algo'] or '-':5} {r['steps'] or 0:>9} "
                   f"{(r['sps'] or 0):>7.0f} {ev if ev is None else round(ev, 2)!s:>9}  "
                   f"{r['status']}")



if __name__ == "__main__":
    sys.exit(cli())
