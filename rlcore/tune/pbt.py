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

After every round each member is checkpointed and the round is recorded in ``pbt_state.json``
(written last, atomically): the same command run again after a kill resumes from the last
recorded round, losing at most one interval of training.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rlcore.io import append_jsonl, atomic_write_json, atomic_write_text
from rlcore.tune.objective import metric_value
from rlcore.tune.space import Param, parse_space

__all__ = ["PBTError", "Member", "sample_params", "build_member", "resume_member",
           "exploit_and_explore", "rollout_interval", "run_pbt"]

STATE = "pbt_state.json"
"""The last finished round of a PBT run: its step, history, generator and members' steps."""


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


def build_member(overrides: dict[str, Any], params: dict[str, Any], seed: int, folder: Path,
                 resume_step: int | None = None) -> Member:
    """A member in ``folder`` (named ``member-<i>``): a run folder with its config, a runner with
    a :class:`RunFolderSink` (its ``changes.jsonl``) and the run's evaluator. With
    ``resume_step`` the existing folder is reopened at its checkpoint of that step instead."""
    from rlcore.config import config_to_dict, resolve_configs, resolved_env_kwargs
    from rlcore.runner import Runner, build_agent, build_envs, make_evaluator, seed_everything
    from rlcore.runs import RunDir
    from rlcore.sinks import RunFolderSink

    run, algo_cfg = resolve_configs({**overrides, **params, "seed": seed, "progress": False,
                                     "eval_every": 0})
    run = dataclasses.replace(run, env_kwargs=resolved_env_kwargs(run))
    rd = RunDir(folder)
    if resume_step is None:
        rd.create()
        atomic_write_text(rd.config, _yaml(config_to_dict(run, algo_cfg)))
    seed_everything(seed)
    envs = build_envs(run, algo_cfg)
    agent = build_agent(run, algo_cfg, envs)
    sink = RunFolderSink(rd.tb, rd.changes, rd.rejections, echo=False,
                         purge_step=resume_step)
    # two kept: a kill between two members' checkpoints leaves each the one of the recorded round
    runner = Runner(agent, envs, sink, run, evaluator=make_evaluator(run, algo_cfg),
                    checkpointer=lambda st, step: rd.save_checkpoint(st, step, 2))
    member = Member(int(folder.name.split("-")[1]), folder, runner)
    if resume_step is not None:
        resume_member(member, rd, resume_step)
    return member


def resume_member(member: Member, rd: Any, step: int) -> None:
    """Load ``member``'s checkpoint of ``step`` (the recorded round) and roll back what its
    process did after it: newer checkpoints, ``changes.jsonl`` lines, half-written files."""
    import torch

    path = rd.checkpoint_path(step)
    if not path.is_file():
        raise PBTError(f"{member.folder}: no checkpoint of step {step} (the round recorded in "
                       f"{STATE}); the run cannot be resumed")
    member.runner.load_state_dict(torch.load(path, map_location="cpu", weights_only=False))
    rd.roll_back_to(step)


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
    interval = rollout_interval(interval, algo, algo0, run0.n_envs, space)
    settings = json.loads(json.dumps(
        {"overrides": overrides, "space": space_dict, "population": population,
         "interval": interval, "seed": seed, "quantile": quantile, "exploit": exploit,
         "metric": metric}, default=str))
    saved = _saved_round(out, settings)
    torch.set_num_threads(max(1, run0.torch_threads))
    rng = np.random.default_rng(seed)
    if saved is None:
        members = [build_member(overrides, sample_params(space, rng), seed + i,
                                out / f"member-{i}") for i in range(population)]
        history: list[dict[str, Any]] = []
        t = 0
    else:
        rng.bit_generator.state = saved["rng"]
        members = [build_member(overrides, {}, seed + i, out / f"member-{i}",
                                resume_step=int(saved["member_steps"][i]))
                   for i in range(population)]
        for m in members:
            m.score = float(saved["scores"][m.name])
        history, t = list(saved["history"]), int(saved["t"])
        say(f"[pbt] {out}: resumed after step {t} (the last recorded round)")
    n_q = max(1, int(round(quantile * population)))
    try:
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
            _save_round(out, settings, t, members, history, rng)
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


def _saved_round(out: Path, settings: dict[str, Any]) -> dict[str, Any] | None:
    """The recorded round to resume from (None: start afresh), after checking that ``out`` is
    this run's folder: same settings, not finished. A folder killed before its first round
    holds only members' folders, which are cleared (less than one interval is lost)."""
    if (out / "pbt.json").exists():
        raise PBTError(f"{out}: this PBT run is finished (pbt.json); choose another --study")
    path = out / STATE
    if path.exists():
        try:
            saved = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise PBTError(f"{path}: unreadable ({e}); move the folder away to start again") \
                from None
        if saved.get("settings") != settings:
            diff = sorted(k for k in settings if saved.get("settings", {}).get(k) != settings[k])
            raise PBTError(f"{out}: a PBT run with other settings ({', '.join(diff)}) is there; "
                           "run the same command to resume it or choose another --study")
        return saved
    if out.exists() and any(out.iterdir()):
        if not all(p.is_dir() and p.name.startswith("member-") for p in out.iterdir()):
            raise PBTError(f"{out}: exists and is not empty; choose another --study or --out")
        for p in out.iterdir():
            shutil.rmtree(p)
    return None


def _save_round(out: Path, settings: dict[str, Any], t: int, members: list[Member],
                history: list[dict[str, Any]], rng: np.random.Generator) -> None:
    """Checkpoint every member, then record the round (the record is what a resume trusts)."""
    for m in members:
        m.runner.checkpoint()
    atomic_write_json(out / STATE, {
        "settings": settings, "t": t, "history": history, "rng": rng.bit_generator.state,
        "member_steps": [m.runner.step for m in members],
        "scores": {m.name: m.score for m in members}})
