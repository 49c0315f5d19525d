"""Population-based training (Jaderberg et al. 2017) on the engine's one door for changes
(docs/guide/tuning.md, "Population-based training").

``P`` members train side by side, each a runner in its own run folder. Every ``interval`` steps
each member is evaluated; the worst ``quantile`` of the population **exploit**: they copy the
weights, optimiser and normaliser statistics of a member drawn from the best ``quantile``
(``load_state_dict``), then **explore**: each searched hyperparameter is multiplied by 0.8 or
1.2 (clipped to the space) through ``Runner.apply_change``, while the run goes on (a new gamma
recomputes the advantages not yet trained on). Both steps are lines of the member's
``changes.jsonl``: ``{field: weights, old: member-i, new: member-j, source: pbt:exploit}`` and
``{field, old, new, source: pbt:explore}``. With ``exploit=False`` the same population trains
with its initial values fixed: the baseline at equal compute.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rlcore.io import append_jsonl, atomic_write_json, atomic_write_text
from rlcore.tune.objective import metric_value
from rlcore.tune.space import Param, parse_space

__all__ = ["PBTError", "Member", "sample_params", "build_member", "exploit_and_explore",
           "rollout_interval", "run_pbt"]


class PBTError(ValueError):
    """A PBT setup that cannot work (a searched setting that cannot change mid-run)."""


@dataclass
class Member:
    """One member of the population: its run folder, runner and last score."""

    index: int
    folder: Path
    runner: Any
    score: float = float("nan")

    @property
    def name(self) -> str:
        """``member-<index>``."""
        return f"member-{self.index}"


def sample_params(space: dict[str, Param], rng: np.random.Generator) -> dict[str, Any]:
    """One value per setting, uniform (or log-uniform) within its bounds."""
    out: dict[str, Any] = {}
    for name, p in space.items():
        if p.type == "categorical":
            out[name] = p.choices[int(rng.integers(len(p.choices)))]
            continue
        lo, hi = (math.log(p.low), math.log(p.high)) if p.log else (p.low, p.high)
        v = float(rng.uniform(lo, hi))
        out[name] = p.clip(math.exp(v) if p.log else v)
    return out


def _check_mutable(space: dict[str, Param], algo: str, algo_cfg: Any) -> None:
    from rlcore.config import agent_class

    mutable = {s.name for s in agent_class(algo).hparam_specs(algo_cfg)}
    bad = [n for n, p in space.items() if n not in mutable or p.type == "categorical"]
    if bad:
        raise PBTError(f"--mode pbt: {', '.join(bad)} cannot change while a run goes on (or are "
                       f"categorical); PBT searches numeric mutable settings of {algo}: "
                       f"{', '.join(sorted(mutable))}")


def build_member(overrides: dict[str, Any], params: dict[str, Any], seed: int, folder: Path) -> Member:
    """A member in ``folder`` (named ``member-<i>``): a run folder with its config, a runner with
    a :class:`RunFolderSink` (its ``changes.jsonl``) and the run's evaluator."""
    from rlcore.config import config_to_dict, resolve_configs, resolved_env_kwargs
    from rlcore.runner import Runner, build_agent, build_envs, make_evaluator, seed_everything
    from rlcore.runs import RunDir
    from rlcore.sinks import RunFolderSink

    run, algo_cfg = resolve_configs({**overrides, **params, "seed": seed, "progress": False,
                                     "eval_every": 0})
    run = dataclasses.replace(run, env_kwargs=resolved_env_kwargs(run))
    rd = RunDir(folder).create()
    atomic_write_text(rd.config, _yaml(config_to_dict(run, algo_cfg)))
    seed_everything(seed)
    envs = build_envs(run, algo_cfg)
    agent = build_agent(run, algo_cfg, envs)
    sink = RunFolderSink(rd.tb, rd.changes, rd.rejections, echo=False)
    runner = Runner(agent, envs, sink, run, evaluator=make_evaluator(run, algo_cfg),
                    checkpointer=lambda st, step: rd.save_checkpoint(st, step, 1))
    return Member(int(folder.name.split("-")[1]), folder, runner)


def _yaml(d: dict[str, Any]) -> str:
    import yaml

    return yaml.safe_dump(d, sort_keys=False)


# --8<-- [start:exploit-explore]
def exploit_and_explore(loser: Member, winner: Member, space: dict[str, Param],
                        rng: np.random.Generator, factors: tuple[float, float] = (0.8, 1.2)
                        ) -> None:
    """The loser copies the winner (weights, optimiser, hyperparameters, normaliser), then each
    searched value is multiplied by a random factor and clipped to the space; both logged."""
    r = loser.runner
    r.agent.load_state_dict(copy.deepcopy(winner.runner.agent.state_dict()))
    r.envs.load_norm_state(copy.deepcopy(winner.runner.envs.norm_state()))
    append_jsonl(loser.folder / "changes.jsonl",
                 {"step": r.step, "field": "weights", "old": loser.name, "new": winner.name,
                  "source": "pbt:exploit"})
    values = r.agent.hparam_values()  # the winner's, copied with its state
    for name, p in space.items():
        new = p.clip(float(values[name]) * float(rng.choice(factors)))
        if new != values[name]:  # a value clipped at its bound stays, unlogged
            r.apply_change(name, new, "pbt:explore")
# --8<-- [end:exploit-explore]


def rollout_interval(interval: int, algo: str, algo_cfg: Any, n_envs: int,
                     space: dict[str, Param]) -> int:
    """``interval`` rounded to whole rollouts (``n_steps * n_envs``) for an on-policy agent
    whose rollout length is not searched, so no member copies weights mid-rollout."""
    from rlcore.config import agent_class

    n_steps = getattr(algo_cfg, "n_steps", None)
    if not agent_class(algo).on_policy or n_steps is None or "n_steps" in space:
        return interval
    rollout = int(n_steps) * n_envs
    return max(rollout, round(interval / rollout) * rollout)


def run_pbt(overrides: dict[str, Any], space_dict: dict[str, Any], folder: str | Path,
            population: int = 4, interval: int = 10_000, seed: int = 0, quantile: float = 0.25,
            exploit: bool = True, metric: str = "eval_return_mean",
            echo: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Train a population to ``overrides["steps"]`` each; return (and write to ``pbt.json``)
    the score history, each member's final score and the best member."""
    import torch

    from rlcore.config import resolve_configs

    say = echo or (lambda s: print(s, file=sys.stderr, flush=True))
    algo = overrides.get("algo", "ppo")
    space = parse_space(space_dict, algo, "space")
    run0, algo0 = resolve_configs({**overrides, "progress": False})
    _check_mutable(space, algo, algo0)
    if population < 2:
        raise PBTError(f"--population {population}: PBT needs at least 2 members")
    if not 0 < quantile <= 0.5:
        raise PBTError(f"--pbt-quantile {quantile}: expected 0 < q <= 0.5")
    out = Path(folder)
    if out.exists() and any(out.iterdir()):
        raise PBTError(f"{out}: exists and is not empty; choose another --study or --out")
    interval = rollout_interval(interval, algo, algo0, run0.n_envs, space)
    torch.set_num_threads(max(1, run0.torch_threads))
    rng = np.random.default_rng(seed)
    members = [build_member(overrides, sample_params(space, rng), seed + i, out / f"member-{i}")
               for i in range(population)]
    history: list[dict[str, Any]] = []
    n_q = max(1, int(round(quantile * population)))
    try:
        t = 0
        while t < run0.steps:
            t = min(t + interval, run0.steps)
            for m in members:
                m.runner.run(t)
                m.score = metric_value(m.runner.evaluate(), metric)
                m.score = m.score if math.isfinite(m.score) else -math.inf
                history.append({"step": m.runner.step, "member": m.name, "score": m.score,
                                "hparams": {k: m.runner.agent.hparam_values()[k] for k in space}})
            ranked = sorted(members, key=lambda m: m.score)
            say(f"[pbt] step {t}: " + ", ".join(f"{m.name} {m.score:.4g}" for m in members))
            if exploit and t < run0.steps:
                for loser in ranked[:n_q]:
                    winner = ranked[-n_q:][int(rng.integers(n_q))]
                    exploit_and_explore(loser, winner, space, rng)
                    say(f"[pbt] step {t}: {loser.name} <- {winner.name}")
        for m in members:
            m.runner.checkpoint()
    finally:
        for m in members:
            m.runner.sink.close()
            m.runner.envs.close()
    best = max(members, key=lambda m: m.score)
    result = {"mode": "pbt" if exploit else "fixed", "population": population,
              "interval": interval, "quantile": quantile, "steps": run0.steps, "seed": seed,
              "final": {m.name: m.score for m in members}, "best_member": best.name,
              "best_score": best.score, "history": history}
    atomic_write_json(out / "pbt.json", result)
    return result
