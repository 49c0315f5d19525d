"""The study: its storage (a journal file by default, a database URL across machines), TPE, the
pruner, and the worker loop that runs trials until the study has its count
(docs/guide/tuning.md, "Storage and workers").

Optuna's FAQ: never SQLite for parallel workers; ``JournalStorage(JournalFileBackend(path))``
for processes on one machine; MySQL/PostgreSQL across machines. Every worker opens the same
storage; the study is the only thing they share.
"""

from __future__ import annotations

import datetime
import os
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from rlcore.tune.claim import Claim, FlockLock, study_claim
from rlcore.tune.spec import TuneSpec, load_objective

__all__ = ["StorageError", "FlockLock", "make_storage", "make_pruner", "open_study", "counts", "reap_dead",
           "work", "progress_line", "journal_path", "claim_of", "JOURNAL"]

JOURNAL = "journal.log"
"""The default storage: this file in the study's folder."""

STARTED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING, TrialState.WAITING)
"""States that count toward ``--trials``. A FAIL is a trial whose worker died; it is retried."""


class StorageError(ValueError):
    """A storage that cannot be opened; the message names the URL."""


def make_storage(storage: str, folder: str | Path) -> Any:
    """Open ``storage``: empty -> ``<folder>/journal.log``; ``journal:PATH``; or a database URL
    (``postgresql://user@host:port/db``, ``mysql://...``). SQLite is refused (not safe for
    parallel workers)."""
    from optuna.storages import JournalStorage, RDBStorage
    from optuna.storages.journal import JournalFileBackend

    path = journal_path(storage, folder)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        return JournalStorage(JournalFileBackend(str(path), lock_obj=FlockLock(path)))
    scheme = storage.split("://", 1)[0] if "://" in storage else ""
    if scheme.startswith("sqlite"):
        raise StorageError(f"--storage {storage}: SQLite is not safe for parallel workers "
                           "(Optuna's FAQ); leave --storage out for a journal file, or give a "
                           "postgresql:// URL")
    if not scheme.startswith(("postgresql", "mysql")):
        raise StorageError(f"--storage {storage!r}: expected a database URL "
                           "(postgresql://user:password@host:port/db) or journal:PATH")
    url = _driver(storage)
    for attempt in range(5):
        try:
            return RDBStorage(url, engine_kwargs={"pool_pre_ping": True})
        except Exception as e:  # driver missing, server down, bad credentials
            if attempt < 4 and _lost_schema_race(e):
                time.sleep(0.2 * (attempt + 1))
                continue
            msg = " ".join(str(e).split())[:300]
            raise StorageError(f"--storage {_hide_password(storage)}: cannot open "
                               f"({type(e).__name__}: {msg})") from None
    raise AssertionError("unreachable")


def _lost_schema_race(e: Exception) -> bool:
    """Whether opening a new database failed only because another worker, started at the same
    instant, was creating Optuna's tables too ("already exists"): opening again succeeds."""
    return type(e).__name__ in ("IntegrityError", "ProgrammingError") and \
        "already exists" in str(e)


def journal_path(storage: str, folder: str | Path) -> Path | None:
    """The journal file of ``--storage`` (empty: ``<folder>/journal.log``; ``journal:PATH``), or
    None for a database URL."""
    if not storage:
        return Path(folder) / JOURNAL
    return Path(storage[len("journal:"):]) if storage.startswith("journal:") else None


def _driver(url: str) -> str:
    """A bare ``postgresql://`` URL with the driver that is installed: SQLAlchemy 2.1 means
    psycopg 3 by it; the dev extra installs psycopg2 (``postgresql+psycopg2://``)."""
    if url.split("://", 1)[0] != "postgresql":
        return url
    import importlib.util

    if importlib.util.find_spec("psycopg") is None and importlib.util.find_spec("psycopg2"):
        return "postgresql+psycopg2://" + url.split("://", 1)[1]
    return url


def _hide_password(url: str) -> str:
    head, sep, tail = url.partition("://")
    if "@" in tail and ":" in tail.split("@", 1)[0]:
        user = tail.split("@", 1)[0].split(":", 1)[0]
        return f"{head}{sep}{user}:***@{tail.split('@', 1)[1]}"
    return url


def make_pruner(kind: str, startup_trials: int, warmup_steps: int) -> optuna.pruners.BasePruner:
    """``median``: stop a trial whose value at a step is worse than the median of earlier
    trials at that step (eq. (2)); ``wilcoxon``: for fold objectives, stop a trial that the
    Wilcoxon signed-rank test finds worse than the best on the folds both have; ``none``."""
    if kind == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=startup_trials,
                                           n_warmup_steps=warmup_steps)
    if kind == "wilcoxon":
        import warnings

        with warnings.catch_warnings():  # "experimental" since Optuna 3.6: said once, here
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.pruners.WilcoxonPruner(p_threshold=0.1, n_startup_steps=2)
    if kind == "none":
        return optuna.pruners.NopPruner()
    raise ValueError(f"--pruner {kind!r}: expected median, wilcoxon or none")


def open_study(spec: TuneSpec, worker: int = 0) -> optuna.Study:
    """Create the study or load it (a resumed study, a second worker): TPE (eq. (1)), the
    pruner of ``spec.pruner``, maximising."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    seed = None if spec.sampler_seed is None else spec.sampler_seed + worker
    sampler = optuna.samplers.TPESampler(n_startup_trials=spec.startup_trials, seed=seed)
    pruner = make_pruner(spec.pruner, spec.startup_trials, spec.warmup_steps)
    return optuna.create_study(study_name=spec.study, storage=make_storage(spec.storage,
                                                                          spec.folder),
                               sampler=sampler, pruner=pruner, direction="maximize",
                               load_if_exists=True)


def counts(study: optuna.Study) -> dict[str, int]:
    """Trials per state (lower-case names), and ``started``: those counting toward the total."""
    out = {s.name.lower(): 0 for s in TrialState}
    trials = study.get_trials(deepcopy=False)
    for t in trials:
        out[t.state.name.lower()] += 1
    out["started"] = sum(t.state in STARTED for t in trials)
    return out


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def reap_dead(study: optuna.Study, grace_s: float = 60.0) -> list[int]:
    """Trials left running by a dead process of this host (``kill -9``): marked FAIL with the
    reason, their parameters enqueued again so the study loses no trial. Returns their numbers."""
    host, now = socket.gethostname(), datetime.datetime.now()
    retried = {t.user_attrs.get("retry_of") for t in study.get_trials(deepcopy=False)}
    out = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        pid = t.user_attrs.get("pid")
        if pid is None:  # killed before it said who runs it
            if t.datetime_start and (now - t.datetime_start).total_seconds() < grace_s:
                continue
        elif t.user_attrs.get("host") != host or _alive(int(pid)):
            continue
        st = study._storage
        st.set_trial_user_attr(t._trial_id, "reason", f"worker {host}:{pid} died; retried")
        st.set_trial_state_values(t._trial_id, TrialState.FAIL)
        if t.number not in retried:  # with the values it had drawn (maybe none yet)
            study.enqueue_trial(t.params, user_attrs={"retry_of": t.number})
        out.append(t.number)
    return out


def progress_line(study: optuna.Study, total: int, trial: optuna.trial.FrozenTrial,
                  worker: int = 0) -> str:
    """One line after a trial: its outcome, the study's counts and the best so far."""
    c = counts(study)
    what = (f"{trial.value:.6g}" if trial.state == TrialState.COMPLETE
            else f"{trial.state.name.lower()} ({trial.user_attrs.get('reason', '')[:120]})")
    try:
        best = f"best {study.best_value:.6g} (trial {study.best_trial.number})"
    except ValueError:
        best = "no complete trial yet"
    return (f"[tune w{worker}] trial {trial.number}: {what} | {c['complete'] + c['pruned']}/"
            f"{total} done: {c['complete']} complete, {c['pruned']} pruned, {c['running']} "
            f"running | {best}")


def claim_of(spec: TuneSpec) -> Claim:
    """The study's claim (:mod:`rlcore.tune.claim`): held to count and start a trial, and to
    reap a dead worker's trials, so two commands never both retry the same one."""
    journal = journal_path(spec.storage, spec.folder)
    return study_claim(journal, "" if journal else _driver(spec.storage), spec.study)


def work(spec: TuneSpec, worker: int = 0,
         echo: Callable[[str], None] | None = None) -> int:
    """A worker: run trials of the study until ``spec.trials`` have started (complete, pruned,
    running or queued, over every worker) and none is queued; return how many this worker ran.
    Counting and starting a trial happen under the study's claim (:mod:`rlcore.tune.claim`)."""
    study = open_study(spec, worker)
    objective = load_objective(spec)
    say = echo or (lambda s: print(s, file=sys.stderr, flush=True))
    claim = claim_of(spec)

    def claimed(trial: optuna.Trial) -> float:
        claim.release()  # the trial exists: the next worker may count it and start its own
        return objective(trial)

    done = 0
    while True:
        with claim:  # count and start under one claim: N workers never overshoot --trials
            c = counts(study)
            if c["started"] >= spec.trials and not c["waiting"]:
                break  # queued trials (a dead worker's, retried) run even at the count
            study.optimize(claimed, n_trials=1, gc_after_trial=False, catch=(),
                           callbacks=[lambda s, t: say(progress_line(s, spec.trials, t,
                                                                     worker))])
        done += 1
    return done
