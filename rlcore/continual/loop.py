"""The online loop: every tick, take the newest bars, fine-tune a candidate, promote it or not.

One tick at time ``T`` (docs/guide/continual-learning.md, "The tick"):

1. read ``online/control.yaml`` (learning rate, tick budget, rehearsal mix, anchor strength,
   margin, pause, stop);
2. poll the source for bars that closed by ``T`` (eq. (1)); log every cleaning decision;
3. split the newest bars into a training window and the hold-out window after it (eq. (8));
4. copy the serving agent into a candidate and fine-tune it through ``rlcore.runner.Runner``
   (environments built on the window, a memory sink, the agent's own step clock continued, so
   its schedules go on where they were) for ``tick_steps`` environment steps, a share
   ``rehearsal_frac`` of its rollouts on older windows from the reservoir, with the anchor
   penalty's hook attached;
5. evaluate candidate, serving and frozen (version 0) agents on the hold-out window;
6. promote if ``candidate >= serving - promote_margin`` (eq. (9)) and save the version;
   a failed or non-finite update is discarded and logged, and the serving agent stays;
7. write the state file (the commit point), then the tick's log lines.

After a SIGKILL, :meth:`OnlineLoop.resume` reloads the state file: the serving agent is the last
promoted version and the source continues after its saved position.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from rlcore.config import agent_class, configs_from_dict
from rlcore.continual.anchor import Anchor, GradSquareMeter, agent_params
from rlcore.continual.holdout import (
    evaluate_window,
    make_single_env,
    start_bounds,
    window_env_kwargs,
)
from rlcore.continual.memory import WindowReservoir, configure_recency
from rlcore.continual.settings import OnlineSettings
from rlcore.continual.source import Source
from rlcore.control import ControlFile, same_value
from rlcore.hparams import HParamError
from rlcore.io import append_jsonl, atomic_write_text, brief, read_yaml
from rlcore.runner import Runner, build_envs, seed_everything
from rlcore.runs import RunDir, atomic_torch_save
from rlcore.sinks import MemorySink, loggable

__all__ = ["OnlineConfig", "OnlineLoop"]


@dataclass(frozen=True)
class OnlineConfig:
    """Fixed settings of an online run (mutable ones live in :class:`OnlineSettings`)."""

    every: pd.Timedelta = pd.Timedelta("60min")
    """Simulated (replay) or real (ccxt) time between ticks."""
    speed: float = float("inf")
    """Replay only: simulated seconds per wall second (inf: no sleeping)."""
    train_bars: int = 2880
    """Bars in the newest training window (before the hold-out)."""
    holdout_bars: int = 720
    """Bars in the hold-out window (the newest bars; never trained on in this tick)."""
    warmup_bars: int | None = None
    """Bars the replay starts with (default train_bars + holdout_bars)."""
    episode_length: int = 256
    """Episode length in bars for training and hold-out episodes."""
    n_envs: int = 4
    """Environments stepped together while fine-tuning."""
    chunk_steps: int = 1024
    """Off-policy agents: steps per rollout chunk (on-policy: n_steps * n_envs)."""
    reservoir_size: int = 16
    """Older training windows kept for rehearsal."""
    anchor: str = "none"
    """``none``, ``l2`` or ``ewc``."""
    max_ticks: int | None = None
    """Stop after this many ticks (None: until the replay ends)."""
    seed: int = 0
    """Seed of the tick RNG (window choice) and of the runner."""
    eval_stride: int | None = None
    """Bars between hold-out episode starts (default: episode_length, non-overlapping)."""
    control_settle_s: float = 1.0
    """Read an ``online/control.yaml`` edit once the file has been unchanged this long."""


class OnlineLoop:
    """Runs ticks in ``RUN_DIR/online/`` for the agent trained in ``RUN_DIR``."""

    def __init__(self, run_dir: str | Path, source: Source, config: OnlineConfig = OnlineConfig(),
                 settings: OnlineSettings | None = None, env_id: str | None = None,
                 env_kwargs: dict[str, Any] | None = None, quiet: bool = True):
        if config.anchor not in ("none", "l2", "ewc"):
            raise ValueError(f"anchor: expected none, l2 or ewc, got {config.anchor!r}")
        self.rd = RunDir(run_dir)
        self.dir = self.rd.path / "online"
        self.cfg, self.source, self.quiet = config, source, quiet
        self.run_cfg, self.algo_cfg = configs_from_dict(read_yaml(self.rd.config))
        if self.run_cfg.frame_stack > 1:
            raise ValueError(f"{self.rd.config}: frame_stack > 1 is not supported online")
        self.env_id = env_id or self.run_cfg.env
        kw = dict(self.run_cfg.env_kwargs if env_kwargs is None else env_kwargs)
        self.env_kwargs = window_env_kwargs(self.env_id, self.run_cfg.algo, kw,
                                            config.episode_length)
        self.settings = settings or OnlineSettings()
        self.control = ControlFile(self.dir / "control.yaml", self.rd.path.name,
                                   settle_s=config.control_settle_s)
        self.on_policy = agent_class(self.run_cfg.algo).on_policy
        self.data: pd.DataFrame | None = None
        self.tick = 0
        self.clock = 0  # environment steps the agent lineage has trained (continues the run's)
        self.tick_time: pd.Timestamp | None = None
        self.reservoir = WindowReservoir(config.reservoir_size, config.seed)
        self.version = 0
        self.fisher: dict[str, torch.Tensor] | None = None
        self.history: list[dict[str, Any]] = []
        self.serving: Any = None
        self.frozen: Any = None
        self.norm: dict[str, Any] = {}
        self._stop = False
        self.stopped_by: str | None = None
        """The signal that stopped :meth:`run` (set by the ``online`` command's handler)."""
        self._warm_bars: int | None = None

    # -- start and resume --------------------------------------------------------------------
    @property
    def state_path(self) -> Path:
        """The commit-point state file."""
        return self.dir / "state.pt"

    def start(self) -> OnlineLoop:
        """Begin (or, if ``online/state.pt`` exists, resume) the online run."""
        if self.state_path.exists():
            return self.resume()
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "versions").mkdir(exist_ok=True)
        ckpt = torch.load(self.rd.latest_checkpoint(), map_location="cpu", weights_only=False)
        self.norm = ckpt.get("norm", {})
        self.clock = int(ckpt.get("step", 0))
        warm = self.cfg.warmup_bars or (self.cfg.train_bars + self.cfg.holdout_bars)
        first = self.source.first_tick(warm)
        self.tick_time = first if first is not None else pd.Timestamp.now(tz="UTC")  # None: live
        self.serving = self._build_agent(ckpt["agent"])
        self.frozen = copy.deepcopy(self.serving)
        self._save_version(self.serving, {"source": str(self.rd.latest_checkpoint())}, {})
        self.control.write(self.settings.specs_dict())
        return self

    def resume(self) -> OnlineLoop:
        """Reload the state file: last promoted version, source position, data, memories."""
        st = torch.load(self.state_path, map_location="cpu", weights_only=False)
        self.tick, self.tick_time = st["tick"], pd.Timestamp(st["tick_time"])
        self.clock = int(st.get("clock", 0))
        self.source.load_state_dict(st["source"])
        self.data = st["data"]
        self.reservoir.load_state_dict(st["reservoir"])
        self.version, self.history, self.fisher = st["version"], st["history"], st["fisher"]
        self.settings.load_state_dict(st["settings"])
        if st.get("control"):
            self.control.load_state_dict(st["control"])
        self.norm = st["norm"]
        v = torch.load(self._version_path(self.version), map_location="cpu", weights_only=False)
        v0 = torch.load(self._version_path(0), map_location="cpu", weights_only=False)
        self.serving = self._build_agent(v["agent"])
        self.frozen = self._build_agent(v0["agent"])
        for name in ("promotions.jsonl", "ticks.jsonl", "data_events.jsonl"):
            _truncate_jsonl(self.dir / name, self.tick)
        for name, line in zip(("promotions.jsonl", "ticks.jsonl"), st.get("last_lines", ())):
            if line is not None and _last_tick(self.dir / name) < line["tick"]:
                append_jsonl(self.dir / name, line)  # killed between commit and log
        self._say(f"[online] resumed after tick {self.tick} at {self.tick_time.isoformat()}, "
                  f"serving v{self.version}, source at {self.source.position}")
        return self

    def _build_agent(self, state: dict[str, Any]) -> Any:
        data = self.data
        if data is None:  # only bars closed by now (None from a live source)
            data = self.source.closed_bars(self.tick_time)
        if data is None:  # a live source before its first poll: the spaces of the training data
            data = self.run_cfg.env_kwargs.get("data")
        env = make_single_env(self.env_id, self.env_kwargs, data)
        try:
            agent = agent_class(self.run_cfg.algo)(self.algo_cfg, env.observation_space,
                                                   env.action_space, self.cfg.n_envs, 0, "cpu")
        finally:
            env.close()
        agent.load_state_dict(state)
        return agent

    # -- the loop ----------------------------------------------------------------------------
    def run(self) -> list[dict[str, Any]]:
        """Tick until the replay ends, ``max_ticks`` or a ``stop`` command; return tick records."""
        done: list[dict[str, Any]] = []
        end = self.source.end  # None: a live source, which never ends and runs on the wall clock
        while not self._stop:
            if self.cfg.max_ticks is not None and self.tick >= self.cfg.max_ticks:
                break
            if end is not None and self.tick > 0 and self.tick_time > end:
                break
            t0 = time.perf_counter()
            done.append(self.step())
            speed = self.cfg.speed if end is not None else 1.0
            wait = self.cfg.every.total_seconds() / speed - (time.perf_counter() - t0)
            if wait > 0 and math.isfinite(wait):
                deadline = time.monotonic() + wait
                while not self._stop and time.monotonic() < deadline:  # a stop ends the wait
                    time.sleep(min(0.5, max(0.0, deadline - time.monotonic())))
        return done

    def request_stop(self) -> None:
        """End :meth:`run` after the tick in progress (a signal handler calls this); the state
        of the last finished tick is on disk, so the next start resumes after it."""
        self._stop = True

    def step(self) -> dict[str, Any]:
        """One tick at ``self.tick_time``; returns its record (also in ``ticks.jsonl``)."""
        T = self.tick_time
        assert T is not None
        self.poll_control()
        new, events = self.source.poll(T)
        for e in events:
            append_jsonl(self.dir / "data_events.jsonl", {"tick": self.tick + 1, **e.to_dict()})
        if len(new):
            self.data = new if self.data is None else pd.concat([self.data, new])
        rec: dict[str, Any] = {
            "tick": self.tick + 1, "tick_time": T.isoformat(), "new_bars": len(new),
            "new_first": new.index[0].isoformat() if len(new) else None,
            "new_last": new.index[-1].isoformat() if len(new) else None,
            "data_events": len(events)}
        promo = self._learn(T)
        self.tick += 1
        self.history.append({k: rec[k] for k in ("tick", "new_bars", "new_first", "new_last")})
        if promo is not None:
            rec.update({k: promo[k] for k in ("decision", "reason", "version")})
        nxt = T + self.cfg.every if self.source.end is not None else None  # live: wall clock
        self._commit(nxt, (promo, rec))
        if promo is not None:
            append_jsonl(self.dir / "promotions.jsonl", promo)
        append_jsonl(self.dir / "ticks.jsonl", rec)
        self._say(f"[online] tick {rec['tick']} {T.isoformat()}: +{rec['new_bars']} bars, "
                  f"{rec.get('decision', 'no training')} {rec.get('reason', '')}")
        self.tick_time = nxt if nxt is not None else pd.Timestamp.now(tz="UTC")
        return rec

    # --8<-- [start:learn]
    def _learn(self, T: pd.Timestamp) -> dict[str, Any] | None:
        cfg, s = self.cfg, self.settings
        if self.data is None or len(self.data) < cfg.holdout_bars + cfg.episode_length + 16:
            return None
        # docs/guide/continual-learning.md, eq. (8): hold-out = newest bars, training before it
        hold = self.data.iloc[-cfg.holdout_bars:]
        train = self.data.iloc[max(0, len(self.data) - cfg.holdout_bars - cfg.train_bars):
                               -cfg.holdout_bars]
        window = (train.index[0], train.index[-1])
        promo: dict[str, Any] = {
            "tick": self.tick + 1, "tick_time": T.isoformat(),
            "train_range": [window[0].isoformat(), window[1].isoformat()],
            "holdout_range": [hold.index[0].isoformat(), hold.index[-1].isoformat()],
            "serving_version": self.version, "hparams": s.values()}
        if s["pause"]:
            promo.update(decision="skipped", reason="paused through the control file",
                         version=self.version)
            return promo
        cand, info = self._fine_tune(train)
        promo["train"] = info
        eval_data = self.data.iloc[-(cfg.holdout_bars + self._warm()):]
        serving_m = self._evaluate(self.serving, eval_data)
        frozen_m = self._evaluate(self.frozen, eval_data)
        promo.update(serving=serving_m, frozen=frozen_m)
        if cand is None:
            promo.update(decision="discarded", reason=info["error"], version=self.version)
        else:
            cand_m = self._evaluate(cand, eval_data)
            promo["candidate"] = cand_m
            c, v, margin = cand_m["return_mean"], serving_m["return_mean"], s["promote_margin"]
            if not math.isfinite(c):
                promo.update(decision="discarded", reason="candidate hold-out return is not finite",
                             version=self.version)
            elif c >= v - margin:  # docs/guide/continual-learning.md, eq. (9)
                self.serving, self.version = cand, self.version + 1
                if info.get("fisher") is not None:
                    self.fisher = info.pop("fisher")
                promo.update(decision="promoted", version=self.version,
                             reason=f"candidate {c:.4g} >= serving {v:.4g} - margin {margin:g}")
                self._save_version(cand, promo, cand_m)
            else:
                promo.update(decision="rejected", version=self.version,
                             reason=f"candidate {c:.4g} < serving {v:.4g} - margin {margin:g}")
        info.pop("fisher", None)
        self.reservoir.add((window[0], window[1]))
        return promo
    # --8<-- [end:learn]

    def _warm(self) -> int:
        """Bars of history an episode start needs (the env's first valid start bar; cached)."""
        if self._warm_bars is None:
            env = make_single_env(self.env_id, self.env_kwargs, self.data)
            try:
                self._warm_bars = start_bounds(env, self.env_id)[0]
            finally:
                env.close()
        return self._warm_bars

    def _fine_tune(self, train: pd.DataFrame) -> tuple[Any, dict[str, Any]]:
        """Copy the serving agent and train it for ``tick_steps`` steps; (None, info) on failure."""
        s, cfg = self.settings, self.cfg
        cand = copy.deepcopy(self.serving)
        if "learning_rate" in cand.hparam_values():
            cand.set_hparam("learning_rate", s["learning_rate"], "online")
        if self.on_policy:
            chunk = int(self.algo_cfg.n_steps) * cfg.n_envs
        else:
            chunk = cfg.chunk_steps
            configure_recency(cand, s["recent_frac"], chunk)
        n_chunks = max(1, -(-int(s["tick_steps"]) // chunk))
        rng = np.random.default_rng([cfg.seed, self.tick + 1])
        meter = GradSquareMeter().attach(cand) if cfg.anchor == "ewc" else None
        anchor = None
        if cfg.anchor != "none":
            ref = {n: p.detach() for n, p in agent_params(self.serving).items()}
            anchor = Anchor(ref, self.fisher if cfg.anchor == "ewc" else None,
                            s["anchor_strength"]).attach(cand)
        info: dict[str, Any] = {"chunks": n_chunks, "steps": n_chunks * chunk, "rehearsal": 0}
        try:
            for j in range(n_chunks):
                data = train
                if len(self.reservoir) and rng.random() < s["rehearsal_frac"]:
                    a, b = self.reservoir.sample(rng)
                    data = self.data.loc[a:b]
                    info["rehearsal"] += 1
                run = dataclasses.replace(
                    self.run_cfg, env_kwargs={**self.env_kwargs, "data": data},
                    n_envs=cfg.n_envs, steps=chunk, seed=cfg.seed + 1000 * (self.tick + 1) + j,
                    progress=False, eval_every=0, checkpoint_every=0, env=self.env_id)
                seed_everything(run.seed)  # each chunk's randomness is its own (resumes repeat it)
                envs = build_envs(run, self.algo_cfg)
                try:
                    envs.load_norm_state(self.norm)
                    if envs.obs_norm is not None:
                        envs.obs_norm.update_running_mean = False
                    # the clock continues the agent's own: schedules go on, nothing restarts
                    out = Runner(cand, envs, MemorySink(), run, step=self.clock).run(
                        self.clock + chunk)
                finally:
                    envs.close()
                self.clock = out["steps"]
                info["metrics"] = out["metrics"]
        except (FloatingPointError, RuntimeError, ValueError) as e:
            info["error"] = f"update failed: {type(e).__name__}: {e}"
            return None, info
        finally:
            if anchor is not None:
                anchor.detach()
            if meter is not None:
                meter.detach()
        bad = [n for n, p in agent_params(cand).items() if not torch.isfinite(p).all()]
        if bad:
            info["error"] = f"non-finite weights after the update in {', '.join(bad[:3])}"
            return None, info
        if meter is not None:
            info["fisher"] = meter.fisher()
        return cand, info

    def _evaluate(self, agent: Any, data: pd.DataFrame) -> dict[str, float]:
        return evaluate_window(agent, self.env_id, self.env_kwargs, data, self.cfg.episode_length,
                               self.norm, self.cfg.eval_stride)

    # -- control file ------------------------------------------------------------------------
    def poll_control(self) -> None:
        """Apply edits of ``online/control.yaml`` (never rewritten: it stays as the user wrote
        it); log changes and refusals (a refusal never stops the loop); obey ``stop``."""
        upd = self.control.poll()
        if upd is None:
            return
        for fld, reason in upd.errors:
            append_jsonl(self.dir / "rejections.jsonl",
                         {"tick": self.tick, "field": fld, "value": None, "reason": reason})
        for name in upd.changed:
            value = upd.hparams[name]
            try:
                if name in self.settings and same_value(value, self.settings.spec(name)):
                    continue
                ch = self.settings.set(name, value)
            except Exception as e:  # HParamError, or anything odd in the value: refused
                reason = str(e) if isinstance(e, HParamError) else f"{type(e).__name__}: {e}"
                append_jsonl(self.dir / "rejections.jsonl",
                             {"tick": self.tick, "field": name, "value": loggable(value),
                              "reason": brief(reason, 500)})
                self._say(f"[online] refused {name}: {brief(reason, 500)}")
                continue
            append_jsonl(self.dir / "changes.jsonl",
                         {"step": self.tick, "field": name, "old": ch[0], "new": ch[1],
                          "source": "control"})
            self._say(f"[online] tick {self.tick}: {name} {ch[0]!r} -> {ch[1]!r}")
        if upd.command == "stop":
            self._stop = True

    # -- persistence -------------------------------------------------------------------------
    def _version_path(self, k: int) -> Path:
        return self.dir / "versions" / f"v{k:04d}.pt"

    def _save_version(self, agent: Any, promo: dict[str, Any], metrics: dict[str, float]) -> None:
        rec = {"agent": agent.state_dict(), "norm": self.norm, "version": self.version,
               "tick": self.tick + 1 if self.version else 0,
               "train_range": promo.get("train_range"), "holdout_range": promo.get("holdout_range"),
               "metrics": metrics, "online_hparams": self.settings.values(),
               "agent_hparams": agent.hparam_values(), "algo": self.run_cfg.algo}
        atomic_torch_save(rec, self._version_path(self.version))
        meta = {k: v for k, v in rec.items() if k not in ("agent", "norm")}
        atomic_write_text(self._version_path(self.version).with_suffix(".json"),
                          json.dumps(meta, indent=2, default=str) + "\n")

    def _commit(self, next_tick: pd.Timestamp | None, lines: tuple = ()) -> None:
        st = {"tick": self.tick, "clock": self.clock,
              "tick_time": (next_tick or self.tick_time).isoformat(),
              "source": self.source.state_dict(), "data": self.data,
              "reservoir": self.reservoir.state_dict(), "version": self.version,
              "history": self.history, "fisher": self.fisher,
              "settings": self.settings.state_dict(), "norm": self.norm,
              "control": self.control.state_dict(),
              "last_lines": lines}
        atomic_torch_save(st, self.state_path)

    def _say(self, msg: str) -> None:
        if not self.quiet:
            print(msg, flush=True)


def _last_tick(path: Path) -> int:
    """The tick of the last whole line of a log (0 if none)."""
    if not path.exists():
        return 0
    last = 0
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            last = int(json.loads(line).get("tick", last))
        except json.JSONDecodeError:
            continue
    return last


def _truncate_jsonl(path: Path, last_tick: int) -> None:
    """Drop lines of ticks after ``last_tick`` (written by a tick that never committed)."""
    if not path.exists():
        return
    keep = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            if json.loads(line).get("tick", 0) <= last_tick:
                keep.append(line)
        except json.JSONDecodeError:
            continue  # a torn last line
    atomic_write_text(path, "".join(x + "\n" for x in keep))
