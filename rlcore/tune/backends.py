"""Where the workers run: local processes (the default) or Ray tasks, all on the study's one
storage. Optuna stays the search engine (TPE, the pruner); Ray only places workers, which is why
Ray Tune's ``OptunaSearch`` (no pruner) is not used."""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from typing import Any

from rlcore.tune.spec import TuneSpec
from rlcore.tune.study import work

__all__ = ["BackendError", "run_workers"]


class BackendError(RuntimeError):
    """A backend that cannot run (Ray not installed, a worker that failed)."""


def run_workers(spec: TuneSpec, workers: int = 1, backend: str = "local") -> None:
    """Run ``workers`` workers on the study until it has its trials.

    ``local``: one worker runs in this process; more are spawned processes. ``ray``: Ray tasks
    of one CPU each, on the cluster of ``$RAY_ADDRESS`` or on this machine
    (``ray.init(num_cpus=workers)``).
    """
    if workers < 1:
        raise BackendError(f"--workers {workers}: expected at least 1")
    if backend == "local":
        _local(spec, workers)
    elif backend == "ray":
        _ray(spec, workers)
    else:
        raise BackendError(f"--backend {backend!r}: expected local or ray")


def _local(spec: TuneSpec, workers: int) -> None:
    if workers == 1:
        work(spec, 0)
        return
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_spawned_work, args=(spec, w, os.getpid()), name=f"tune-w{w}")
             for w in range(workers)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    bad = [f"worker {w} exit code {p.exitcode}" for w, p in enumerate(procs) if p.exitcode]
    if bad:
        raise BackendError(f"{'; '.join(bad)} (the study is saved: run the command again to "
                           "resume)")


def _spawned_work(spec: TuneSpec, worker: int, parent: int) -> int:
    """A spawned worker that ends when the command that started it dies (``kill -9`` of the
    parent would otherwise leave it running; its unfinished trial is retried on resume)."""
    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, daemon=True, name="parent-watch").start()
    return work(spec, worker)


def _ray_work(spec: TuneSpec, worker: int) -> int:
    import torch

    torch.set_num_threads(1)
    return work(spec, worker)


def _ray(spec: TuneSpec, workers: int) -> Any:
    try:
        import ray
    except ImportError:
        raise BackendError("--backend ray: Ray is not installed; pip install -e \".[ray]\"") \
            from None
    address = os.environ.get("RAY_ADDRESS")
    started = not ray.is_initialized()
    if started:
        kw: dict[str, Any] = ({"address": address} if address
                              else {"num_cpus": workers, "include_dashboard": False})
        ray.init(log_to_driver=True, **kw)
    try:
        task = ray.remote(num_cpus=1)(_ray_work)
        return ray.get([task.remote(spec, w) for w in range(workers)])
    finally:
        if started:
            ray.shutdown()
