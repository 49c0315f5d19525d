"""A training run in a run folder: what ``python cli.py train`` does.

:class:`TrainingRun` puts a :class:`rlcore.runner.Runner` in ``runs/<run-id>/``: it writes the
resolved ``config.yaml`` and ``control.yaml``, gives the runner a :class:`RunFolderSink`, the
control file, an evaluator and the folder's checkpointer, resumes from the latest checkpoint, and
at the end evaluates, checkpoints and writes ``summary.json``. :func:`train` is the one-call form.
"""

from __future__ import annotations

import contextlib
import dataclasses
import shutil
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch

from rlcore.config import RunConfig, config_to_dict, resolved_env_kwargs
from rlcore.control import ControlFile
from rlcore.io import atomic_write_text, locked
from rlcore.runner import Runner, build_agent, build_envs, make_evaluator, resolve_device, seed_everything
from rlcore.runs import RunDir, new_run_id, truncate_jsonl
from rlcore.sinks import RunFolderSink

__all__ = ["TrainingRun", "train", "claim_run_dir", "MAX_ROLLBACKS"]


class TrainingRun:
    """One run folder being trained (new, or resumed from its latest checkpoint).

    Attributes:
        rd: the run folder.
        runner: the :class:`Runner` (its ``agent``, ``envs``, ``step``, ``poll_control`` ...).
    """

    def __init__(self, run: RunConfig, algo_cfg: Any, run_dir: RunDir, resume: bool = False,
                 sink: Any = None):
        run = dataclasses.replace(run, env_kwargs=resolved_env_kwargs(run))
        self.run, self.algo_cfg, self.rd = run, algo_cfg, run_dir
        torch.set_num_threads(max(1, run.torch_threads))
        device = resolve_device(run.device)
        state = None
        if resume:  # checked before anything is built or written
            state, path, self.skipped = run_dir.load_checkpoint(map_location=device)
            if run.steps <= int(state["step"]):
                raise ValueError(f"{run_dir.path}: the run has done {int(state['step'])} of "
                                 f"{run.steps} steps; pass --steps N with N > "
                                 f"{int(state['step'])} to train it further")
        seed_everything(run.seed)
        with _sigint_ignored(run.vec == "async"):  # Ctrl-C is the parent's to handle
            envs = build_envs(run, algo_cfg)
        try:
            agent = build_agent(run, algo_cfg, envs, device)
            control = ControlFile(run_dir.control, run_dir.path.name,
                                  settle_s=run.control_settle_s)
            folder = RunFolderSink(run_dir.tb, run_dir.changes, run_dir.rejections,
                                   purge_step=int(state["step"]) if state else None)
            if sink is not None:  # another sink beside the folder's (Prometheus, say)
                from rlcore.sinks import TeeSink

                sink = TeeSink(folder, sink)
            else:
                sink = folder
        except BaseException:
            envs.close()
            raise
        keep = run.keep_checkpoints
        self.runner = Runner(agent, envs, sink, run, control=control,
                             evaluator=make_evaluator(run, algo_cfg),
                             checkpointer=lambda st, step: run_dir.save_checkpoint(st, step, keep))
        if state is not None:
            self.runner.load_state_dict(state)
            self.runner.last_checkpoint = path
            step = self.runner.step
            run_dir.roll_back_to(step)  # what the interrupted process did after this checkpoint
            config = config_to_dict(run, algo_cfg)
            atomic_write_text(run_dir.config, _yaml(config))  # --steps may have grown
            if not control.path.exists():
                control.write(agent.hparam_schedules())
            # otherwise the file on disk is the user's: it is read at the first boundary
            for note in self.skipped:
                print(f"[resume] {note}", file=sys.stderr, flush=True)
            print(f"[resume] {run_dir.path}: from {path.name} (step {step})", file=sys.stderr,
                  flush=True)
        else:
            self.skipped = []
            atomic_write_text(run_dir.config, _yaml(config_to_dict(run, algo_cfg)))
            control.write(agent.hparam_schedules())

    def train(self) -> dict[str, Any]:
        """Train to ``run.steps`` (or a ``stop`` command); evaluate, checkpoint, write and
        return the summary."""
        r, run = self.runner, self.run
        try:
            lock = locked(self.rd.checkpoints, blocking=False)
            lock.__enter__()
        except BlockingIOError:
            r.sink.close()
            r.envs.close()
            raise ValueError(f"{self.rd.path}: another process is training this run") from None
        restore = _on_signals(lambda name: setattr(r, "stop_requested", name))
        try:
            out = self._run_rolling_back(run.steps)
            if r.stop_requested is None:  # interrupted: save at once, no evaluation
                r.evaluate()
            r.checkpoint()
            summary = {
                "algo": run.algo, "env": run.env, "steps": r.step, "wall_s": r.wall_s,
                "sps": out["sps"], "run_id": self.rd.path.name,
                "checkpoint": str(r.last_checkpoint), "seed": run.seed,
                "status": ("interrupted" if r.stop_requested else
                           "stopped" if r.stopped else "completed"),
                "interrupted_by": r.stop_requested,
                "train_return_mean_100": r.recent_return(),
                "train_metrics_mean_100": r.recent_metrics_mean(),
                **r.last_eval,
            }
            self.rd.write_json(self.rd.summary, summary)
        except Exception as e:  # the run failed mid-way: say so in the folder, then raise
            self.rd.write_json(self.rd.summary, {
                "algo": run.algo, "env": run.env, "steps": r.step, "run_id": self.rd.path.name,
                "status": "failed", "error": f"{type(e).__name__}: {str(e)[:500]}",
                "checkpoint": str(r.last_checkpoint) if r.last_checkpoint else None,
                "seed": run.seed})
            raise
        finally:
            restore()
            r.sink.close()
            r.envs.close()
            lock.__exit__(None, None, None)
        return summary


    def _run_rolling_back(self, until: int) -> dict[str, Any]:
        """``runner.run(until)``; when an update gives non-finite losses (a value that made the
        networks diverge), roll back to the newest intact checkpoint, undo the changes made after
        it, log why in ``rejections.jsonl``, and go on; at most ``MAX_ROLLBACKS`` times."""
        r = self.runner
        for attempt in range(MAX_ROLLBACKS + 1):
            try:
                return r.run(until)
            except FloatingPointError as e:
                if r.last_checkpoint is None or attempt == MAX_ROLLBACKS:
                    raise
                failed = r.step
                state, path, _ = self.rd.load_checkpoint(getattr(r.agent, "device", "cpu"))
                r.load_state_dict(state)
                r.last_checkpoint = path
                truncate_jsonl(self.rd.changes, r.step)
                r.sink.rejection(failed, "run", None,
                                 f"{e}; rolled back to {path.name} (step {r.step}): the changes "
                                 "made after it are undone, training goes on")
        raise AssertionError("unreachable")  # pragma: no cover


MAX_ROLLBACKS = 3
"""Roll-backs to a checkpoint after non-finite losses before a run is declared failed."""


def train(run: RunConfig, algo_cfg: Any, run_dir: str | Path | None = None,
          resume: bool = False, sink: Any = None) -> tuple[dict[str, Any], Path]:
    """Train in ``run_dir`` (a new folder under ``run.runs_dir`` by default); returns
    (summary, path of summary.json). ``sink``: a :class:`~rlcore.sinks.LogSink` that gets
    every record beside the run folder's (e.g. :class:`~rlcore.prometheus_sink.PrometheusSink`)."""
    if resume:
        rd = RunDir(run_dir)
        if not rd.config.is_file():
            raise FileNotFoundError(f"{rd.path}: not a run folder (no config.yaml)")
        tr = TrainingRun(run, algo_cfg, rd, resume=True, sink=sink)
    else:
        parent = Path(run_dir).parent if run_dir is not None else Path(run.runs_dir)
        parent_existed = parent.exists()
        rd = claim_run_dir(run, run_dir)
        try:
            tr = TrainingRun(run, algo_cfg, rd, sink=sink)
        except BaseException:  # a failed start leaves no folder behind
            shutil.rmtree(rd.path, ignore_errors=True)
            if not parent_existed:
                with contextlib.suppress(OSError):
                    parent.rmdir()
            raise
    return tr.train(), rd.summary


def claim_run_dir(run: RunConfig, run_dir: str | Path | None = None) -> RunDir:
    """A new run folder, created atomically: ``run_dir``, or ``runs_dir/<run id>`` (with ``~2``,
    ``~3`` ... when runs started in the same second took the name)."""
    if run_dir is not None or run.run_id is not None:
        return RunDir(run_dir if run_dir is not None else Path(run.runs_dir) / run.run_id).create()
    base = Path(run.runs_dir) / new_run_id(run.algo, run.env, run.seed)
    for n in range(1, 10_000):
        try:
            return RunDir(base if n == 1 else base.with_name(f"{base.name}~{n}")).create()
        except FileExistsError:
            continue
    raise FileExistsError(f"{base}: 10,000 runs with this name; choose a --run-id")


def _on_signals(handler: Callable[[str], None]) -> Callable[[], None]:
    """Route the first SIGINT/SIGTERM to ``handler(name)`` (the run saves and exits); a second
    one acts as usual. Returns the function that restores the previous handlers. Does nothing
    outside the main thread, where Python cannot handle signals."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

    def on_signal(signum: int, frame: Any) -> None:
        for sig, old in previous.items():
            signal.signal(sig, old)
        handler(signal.Signals(signum).name)

    for sig in previous:
        signal.signal(sig, on_signal)

    def restore() -> None:
        for sig, old in previous.items():
            signal.signal(sig, old)

    return restore


@contextlib.contextmanager
def _sigint_ignored(active: bool) -> Iterator[None]:
    """Ignore SIGINT while subprocess environments start, so they inherit the ignore: a Ctrl-C
    reaches the whole process group, and the workers must not die of it before the parent has
    saved."""
    if not active or threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)


def _yaml(d: dict[str, Any]) -> str:
    import yaml

    return yaml.safe_dump(d, sort_keys=False)
