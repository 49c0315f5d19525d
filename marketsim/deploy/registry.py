"""The model registry: plain files, offline, no server; every model content-addressed.

Layout of a registry folder (``registry/`` by default, or ``$MARKETSIM_REGISTRY``)::

    registry/
      models/<id>/          one folder per model, never changed once written
        weights.pt          the run's latest checkpoint (agent, normaliser statistics)
        config.yaml         the run's resolved config: `python cli.py train --config` re-trains it
        hparams.yaml        algorithm hyperparameters and the run settings that shape the model
        model.json          the manifest: id, run, parent, data (path, sha256), code version,
                            training and out-of-sample metrics, sha256 of every file above
      aliases.json          champion, challenger, any name -> id, with each alias's history
      events.jsonl          one line per alias change (for people; aliases.json is the truth)

The id is the first 16 hex digits of the sha256 of the manifest's content part (the files'
hashes and the data's hash), so the same weights trained on the same data get the same id.
A model is written into a temp folder beside ``models/`` and renamed into place: a kill -9 in
the middle leaves a ``.tmp-*`` folder that no reader sees and the next write removes.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from marketsim.deploy.aliases import AliasError, AliasTable
from rlcore.io import atomic_write_text, dumps_strict, fsync_dir, read_yaml
from rlcore.runs import RunDir

__all__ = ["Registry", "RegistryError", "ModelRecord", "sha256_file", "data_identity",
           "code_version", "default_root"]

ID_LEN = 16
FILES = ("weights.pt", "config.yaml", "hparams.yaml")
HPARAM_RUN_FIELDS = ("algo", "env", "env_kwargs", "steps", "seed", "n_envs", "frame_stack",
                     "normalize_obs", "normalize_reward")


class RegistryError(ValueError):
    """Bad input for the registry (a missing run, an unknown model); the message names it."""


def default_root() -> Path:
    """``$MARKETSIM_REGISTRY``, or ``registry/`` in the working folder."""
    return Path(os.environ.get("MARKETSIM_REGISTRY", "registry"))


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def code_version(repo: str | Path | None = None) -> dict[str, Any]:
    """The git commit of the code (and whether the tree had uncommitted changes), or None."""
    repo = Path(repo) if repo else Path(__file__).resolve().parents[2]
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True,
                                text=True, timeout=10, check=True).stdout.strip()
        dirty = bool(subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                                    cwd=repo, capture_output=True, text=True, timeout=10,
                                    check=True).stdout.strip())
    except (OSError, subprocess.SubprocessError):
        return {"git_commit": None, "dirty": None}
    return {"git_commit": commit, "dirty": dirty}


# --8<-- [start:data-identity]
def data_identity(run_dir: str | Path, config: dict[str, Any]) -> dict[str, Any]:
    """What the run was trained on: the ``data`` path of its env kwargs and the sha256 of that
    file's bytes; with no path, the embedded synthetic market's seed and the sha256 of its
    candles as CSV. A relative path is looked up from the working folder, then from the folder
    that holds the runs folder (where ``train`` was started)."""
    run = config.get("run", {})
    kwargs = dict(run.get("env_kwargs") or {})
    data = kwargs.get("data")
    if data is None:
        from marketsim.futures.market import resolve_candles

        seed = int(kwargs.get("data_seed", 0))
        csv = resolve_candles(None, seed).to_csv().encode()
        return {"path": None, "synthetic_seed": seed,
                "sha256": hashlib.sha256(csv).hexdigest()}
    path = Path(str(data))
    candidates = [path] if path.is_absolute() else [
        Path.cwd() / path, Path(run_dir).resolve().parent.parent / path]
    for cand in candidates:
        if cand.is_file():
            return {"path": str(data), "sha256": sha256_file(cand), "bytes": cand.stat().st_size}
    raise RegistryError(f"{run_dir}: its training data {data!r} is not found (looked in "
                        f"{', '.join(str(c) for c in candidates)}); the registry needs the data "
                        "to hash it")
# --8<-- [end:data-identity]


@dataclass(frozen=True)
class ModelRecord:
    """A registered model: its id, folder and manifest."""

    id: str
    path: Path
    manifest: dict[str, Any]

    @property
    def weights(self) -> Path:
        """The checkpoint file."""
        return self.path / "weights.pt"

    def as_run_dir(self, dest: str | Path) -> Path:
        """A run folder view of the model at ``dest`` (``config.yaml`` and ``checkpoints/``,
        hard links where the file system allows, else copies) that ``load_run_policy`` reads;
        the model's own folder is never changed."""
        view = Path(dest)
        ckpt = self.manifest.get("checkpoint") or "step_000000000000.pt"
        (view / "checkpoints").mkdir(parents=True, exist_ok=True)
        for name, src in (("config.yaml", self.path / "config.yaml"),
                          (f"checkpoints/{ckpt}", self.weights)):
            dst = view / name
            if dst.exists():
                dst.unlink()
            try:
                os.link(src, dst)
            except OSError:
                shutil.copyfile(src, dst)
        atomic_write_text(view / "checkpoints" / "latest", ckpt + "\n")
        return view


def _latest_checkpoint(run_dir: Path) -> Path:
    """The run's newest checkpoint, by the rule resuming uses (``RunDir.latest_checkpoint``)."""
    try:
        return RunDir(run_dir).latest_checkpoint()
    except FileNotFoundError:
        raise RegistryError(f"{run_dir}: no checkpoint in {run_dir / 'checkpoints'} (train the "
                            "run first)") from None


def _metrics(run_dir: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """Training metrics (``summary.json``) and out-of-sample ones (each ``backtest/*/report.json``)."""
    train: dict[str, Any] = {}
    summary = run_dir / "summary.json"
    if summary.is_file():
        s = json.loads(summary.read_text())
        train = {k: s[k] for k in ("steps", "sps", "eval_return_mean", "eval_return_std",
                                   "eval_metrics", "train_metrics_mean_100", "status")
                 if k in s}
    oos: dict[str, Any] = {}
    for report in sorted((run_dir / "backtest").glob("*/report.json")):
        r = json.loads(report.read_text())
        oos[report.parent.name] = {k: r[k] for k in (
            "data", "trading_start", "n_bars", "total_return", "sharpe", "sortino",
            "max_drawdown", "final_equity", "fees", "trades") if k in r}
    return train, oos


class Registry:
    """A registry folder: register runs, look models up, point aliases at them.

    Args:
        root: the folder (created on first write).
    """

    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root) if root is not None else default_root()
        self.models = self.root / "models"
        self.aliases = AliasTable(self.root)

    def _ensure(self) -> None:
        self.models.mkdir(parents=True, exist_ok=True)

    # --8<-- [start:register]
    def register(self, run_dir: str | Path, parent: str | None = None) -> ModelRecord:
        """Copy a run's latest checkpoint and config into a new content-addressed model with
        its data hash, code version and metrics; the same content gives the same id (then
        nothing is written). RegistryError naming the run when it cannot be registered."""
        run_dir = Path(run_dir)
        if not (run_dir / "config.yaml").is_file():
            raise RegistryError(f"run {str(run_dir)!r}: not a run folder (no config.yaml)")
        config = read_yaml(run_dir / "config.yaml") or {}
        ckpt = _latest_checkpoint(run_dir)
        run = dict(config.get("run", {}))
        hparams = {"run": {k: run.get(k) for k in HPARAM_RUN_FIELDS if k in run},
                   "algo_config": config.get("algo_config", {})}
        data = data_identity(run_dir, config)
        if parent is not None:  # an alias or id prefix of this registry: its model id
            try:
                parent = self.get(parent).id
            except RegistryError:
                pass
        self._ensure()
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=self.root))
        try:
            shutil.copyfile(ckpt, tmp / "weights.pt")
            shutil.copyfile(run_dir / "config.yaml", tmp / "config.yaml")
            (tmp / "hparams.yaml").write_text(yaml.safe_dump(hparams, sort_keys=False))
            files = {name: sha256_file(tmp / name) for name in FILES}
            content = {"files": files, "data_sha256": data["sha256"]}
            model_id = hashlib.sha256(dumps_strict(content, sort_keys=True).encode()) \
                .hexdigest()[:ID_LEN]
            dest = self.models / model_id
            if dest.exists():
                return self.get(model_id)
            train, oos = _metrics(run_dir)
            manifest = {"id": model_id, **content, "run": str(run_dir), "run_id": run.get("run_id"),
                        "checkpoint": ckpt.name, "parent": parent, "data": data,
                        "code_version": code_version(), "algo": run.get("algo"),
                        "env": run.get("env"), "metrics": {"train": train, "out_of_sample": oos},
                        "registered_at": time.time()}
            (tmp / "model.json").write_text(dumps_strict(manifest, indent=2, sort_keys=True))
            for name in (*FILES, "model.json"):
                with open(tmp / name, "rb") as f:
                    os.fsync(f.fileno())
            fsync_dir(tmp)
            os.rename(tmp, dest)  # atomic: the folder appears whole or not at all
            fsync_dir(self.models)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        return self.get(model_id)
    # --8<-- [end:register]

    def get(self, name: str) -> ModelRecord:
        """A model by alias, id, unique id prefix (4+ digits) or the run id it was registered
        from (the latest such model); RegistryError naming ``name``."""
        try:
            name = self.aliases.get(name)
        except AliasError:
            pass
        path = self.models / name
        if not (path / "model.json").is_file():
            hits = [p for p in self.models.glob(f"{name}*") if (p / "model.json").is_file()] \
                if len(name) >= 4 and self.models.is_dir() and "/" not in name else []
            if not hits:
                by_run = [r for r in self.list() if r.manifest.get("run_id") == name]
                hits = [by_run[-1].path] if by_run else []
            if len(hits) != 1:
                aliases = ", ".join(sorted(self.aliases.read().aliases)) or "none"
                what = "ambiguous id prefix" if hits else "unknown model or alias"
                raise RegistryError(f"{what} {name!r} in {self.root} (aliases: {aliases})")
            path = hits[0]
        manifest = json.loads((path / "model.json").read_text())
        return ModelRecord(manifest["id"], path, manifest)

    def list(self) -> list[ModelRecord]:
        """Every model, oldest first (temp folders of interrupted writes are not models)."""
        if not self.models.is_dir():
            return []
        out = [self.get(p.name) for p in self.models.iterdir()
               if not p.name.startswith(".") and (p / "model.json").is_file()]
        return sorted(out, key=lambda r: r.manifest.get("registered_at", 0.0))

    def promote(self, name: str, alias: str = "champion", reason: str = "") -> tuple[str | None, str]:
        """Point ``alias`` at the model ``name`` (an id, prefix or alias); returns (old, new)."""
        model = self.get(name)
        self._ensure()
        old = self.aliases.set(alias, model.id, reason or f"promote {name}")
        return old, model.id

    def rollback(self, alias: str = "champion", reason: str = "") -> tuple[str | None, str | None]:
        """Point ``alias`` back at its previous model (removed if it had none)."""
        if not self.root.is_dir():
            raise AliasError(f"unknown alias {alias!r}: no registry at {self.root}")
        return self.aliases.rollback(alias, reason or "rollback")

    def verify(self) -> list[str]:
        """Problems found (empty: consistent): aliases pointing at no model, files whose
        sha256 differs from the manifest."""
        problems = []
        for alias, mid in self.aliases.read().aliases.items():
            if not (self.models / mid / "model.json").is_file():
                problems.append(f"alias {alias} -> {mid}: no such model")
        for rec in self.list():
            for name, digest in rec.manifest["files"].items():
                if sha256_file(rec.path / name) != digest:
                    problems.append(f"model {rec.id}: {name} does not match its sha256")
        return problems

    def clean(self) -> list[Path]:
        """Remove temp folders left by interrupted writes; returns them."""
        out = []
        if self.root.is_dir():
            with contextlib.suppress(OSError):
                for p in self.root.glob(".tmp-*"):
                    shutil.rmtree(p, ignore_errors=True)
                    out.append(p)
        return out
