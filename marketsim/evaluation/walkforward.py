"""Walk-forward analysis: train on a window, test on the next, slide (docs/guide/evaluation.md,
"Walk-forward").

Folds live on the data's time axis: fold k trains on [s_k, s_k + train) and tests on
[s_k + train, s_k + train + test), with s_k = s_0 + k * step. Each fold's train and test
slices are written as Parquet files in the walk-forward folder (provenance); training reads the
train file through the engine's runner (``env_kwargs={"data": path}``). The test file also holds
the ``warmup`` bars before the test window (the environment's feature window); they are train
bars, used as observation history only: trading starts at the first test bar's close.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from marketsim.evaluation.backtest import backtest_frames, load_run_policy
from marketsim.evaluation.present import (
    MIN_ANNUAL_DAYS,
    conventions_html,
    fmt,
    settings_html,
)
from marketsim.evaluation.report import (
    metrics_table,
    plot_backtest,
    write_csv,
    write_html,
    write_json,
)
from marketsim.evaluation.scorecard import chain_ruin, scorecard

__all__ = ["Fold", "parse_duration", "make_folds", "fold_slices", "chain_equity",
           "WalkForwardSpec", "run_walkforward"]

_DUR = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(w|d|h|m|min)\s*$")


def parse_duration(text: str | pd.Timedelta, what: str = "duration") -> pd.Timedelta:
    """``"60d"``, ``"12h"``, ``"2w"``, ``"30m"`` -> Timedelta; ValueError naming ``what``."""
    if isinstance(text, pd.Timedelta):
        return text
    m = _DUR.match(str(text))
    if not m:
        raise ValueError(f"{what} {text!r}: expected a number and a unit w, d, h or m "
                         f"(e.g. 60d)")
    n, unit = float(m.group(1)), m.group(2)
    td = pd.Timedelta(**{{"w": "weeks", "d": "days", "h": "hours", "m": "minutes",
                          "min": "minutes"}[unit]: n})
    if td <= pd.Timedelta(0):
        raise ValueError(f"{what} {text!r}: expected a positive duration")
    return td


@dataclass(frozen=True)
class Fold:
    """One fold's windows, half-open [start, end) in UTC bar-open times."""

    index: int
    train_start: pd.Timestamp
    train_end: pd.Timestamp
    test_start: pd.Timestamp
    test_end: pd.Timestamp

    def to_dict(self) -> dict[str, Any]:
        """ISO strings."""
        return {k: (v.isoformat() if isinstance(v, pd.Timestamp) else v)
                for k, v in asdict(self).items()}


# --8<-- [start:make-folds]
def make_folds(index: pd.DatetimeIndex, train: pd.Timedelta, test: pd.Timedelta,
               step: pd.Timedelta, max_folds: int | None = None,
               align: str = "start") -> list[Fold]:
    """Folds whose windows lie within the data; ValueError if none fits or if
    ``step < test`` (test windows would overlap and the out-of-sample chain double count).

    ``align="start"``: the first train window starts at the data's first bar and folds slide
    forward. ``align="end"``: the last test window ends at the data's end and folds slide
    backward while their train window fits (the most recent bars are always tested; with
    ``max_folds`` the latest folds are kept). The windows come from the data's own span only.
    """
    if step < test:
        raise ValueError(f"--step {step}: expected >= --test {test} (test windows must not "
                         "overlap)")
    if align not in ("start", "end"):
        raise ValueError(f"align {align!r}: expected 'start' or 'end'")
    if len(index) == 0:
        raise ValueError("data: no bars")
    first = index[0]
    end = index[-1] + (index[-1] - index[-2] if len(index) > 1 else pd.Timedelta(0))
    starts: list[pd.Timestamp] = []
    k = 0
    while max_folds is None or k < max_folds:
        s = first + k * step if align == "start" else end - test - train - k * step
        if (align == "start" and s + train + test > end) or (align == "end" and s < first):
            break
        starts.append(s)
        k += 1
    folds = [Fold(i, s, s + train, s + train, s + train + test)
             for i, s in enumerate(sorted(starts))]
    if not folds:
        raise ValueError(f"data from {first} to {end} is shorter than --train {train} + "
                         f"--test {test}: no fold fits")
    return folds

# --8<-- [end:make-folds]

def fold_slices(df: pd.DataFrame, fold: Fold, warmup: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train rows, test rows with the ``warmup`` rows before the test window prepended)."""
    idx = df.index
    train = df[(idx >= fold.train_start) & (idx < fold.train_end)]
    test_mask = (idx >= fold.test_start) & (idx < fold.test_end)
    first = int(test_mask.argmax()) if test_mask.any() else len(df)
    lo = max(first - warmup, 0)
    test = df.iloc[lo:first + int(test_mask.sum())]
    return train, test


# --8<-- [start:chain-equity]
def chain_equity(curves: list[pd.Series], e0: float) -> pd.Series:
    """Concatenate per-fold equity curves into one out-of-sample curve starting at ``e0``:
    each fold's curve is rescaled to start where the previous one ended (eq. (13))."""
    parts, level = [], e0
    for c in curves:
        scaled = c * (level / float(c.iloc[0]))
        parts.append(scaled)
        level = float(scaled.iloc[-1])
    return pd.concat(parts)
# --8<-- [end:chain-equity]


def chain_frames(frames: list[pd.DataFrame], e0: float) -> pd.DataFrame:
    """Per-fold per-bar frames chained like :func:`chain_equity`; money columns (fees,
    funding, slippage) scaled by the same factor as their fold's equity."""
    parts, level = [], e0
    for f in frames:
        g = f.copy()
        scale = level / float(f["equity"].iloc[0])
        for col in ("equity", "fees", "funding", "slippage"):
            if col in g:
                g[col] = g[col] * scale
        g["position"] = g["position"] * scale if "position" in g else 0.0
        parts.append(g)
        level = float(g["equity"].iloc[-1])
    return pd.concat(parts)


@dataclass(frozen=True)
class WalkForwardSpec:
    """Everything a walk-forward needs (picklable: it travels to worker processes)."""

    data: str
    out: str
    algos: tuple[str, ...] = ("ppo",)
    env: str = "marketsim/CryptoFutures-v0"
    train: str = "60d"
    test: str = "30d"
    step: str = "30d"
    steps: int = 20_000
    sets: tuple[tuple[str, Any], ...] = ()
    env_args: tuple[tuple[str, Any], ...] = ()
    start: str | None = None
    end: str | None = None
    max_folds: int | None = None
    workers: int = 1
    seed: int = 0
    seeds: tuple[int, ...] = ()
    """Training seeds per algorithm and fold (empty: ``(seed,)``); with several, each seed is
    its own strategy ``<algo>-s<seed>``."""
    ensemble: bool = False
    """Also test the blend of every trained agent of the fold (mean of their target positions,
    :func:`marketsim.evaluation.blend.seed_ensemble`) as the strategy ``ensemble``."""
    align: str = "start"
    """Folds from the data's start or back from its end (:func:`make_folds`)."""
    n_boot: int = 2000
    """Stationary-bootstrap resamples of the Sharpe interval (eq. (16)); seeded by ``seed``."""
    algo_env_args: tuple[tuple[str, tuple[tuple[str, Any], ...]], ...] = ()
    """Environment keywords for one algorithm's training and test, over ``env_args``
    (``(("ppo", (("action_type", "discrete"),)),)``: PPO on the discrete levels)."""
    variants: tuple[tuple[str, str, tuple[tuple[str, Any], ...]], ...] = ()
    """More candidates besides ``algos``: ``(label, algorithm, settings)``, trained like the
    algorithm with ``settings`` on top of ``sets`` (``("ppo-ns", "ppo", (("gamma", 0.5),))``);
    each seed is the strategy ``<label>-s<seed>``."""
    validation: str | None = None
    """Validation span at the end of each training window (``"90d"``; None: no validation).
    Candidates then train on the fit part only, are scored on the validation part and the
    strategy ``validated`` trades the gate's pick (:mod:`marketsim.evaluation.validation`,
    eqs. (17)-(18))."""

    def candidates(self) -> list[tuple[str, str, dict[str, Any]]]:
        """``(label, algorithm, settings)`` of every candidate: each of ``algos`` with the
        plain ``sets``, then each of ``variants``."""
        out = [(a, a, dict(self.sets)) for a in self.algos]
        for label, algo, kv in self.variants:
            out.append((label, algo, {**dict(self.sets),
                                      **{f"{algo}.{k}": v for k, v in kv}}))
        return out

    def env_args_of(self, algo: str) -> dict[str, Any]:
        """``env_args`` with ``algo``'s own keywords on top."""
        return {**dict(self.env_args), **dict(dict(self.algo_env_args).get(algo, ()))}

    @property
    def train_seeds(self) -> tuple[int, ...]:
        """The seeds every algorithm is trained with on every fold."""
        return tuple(self.seeds) or (self.seed,)

    def strategy(self, algo: str, seed: int) -> str:
        """Name of one trained agent in the report: the algorithm, ``-s<seed>`` with several."""
        return algo if len(self.train_seeds) == 1 else f"{algo}-s{seed}"

    def seed_names(self) -> list[str]:
        """Every trained agent's strategy name, candidate by candidate, seed by seed."""
        return [self.strategy(lb, sd) for lb, _, _ in self.candidates()
                for sd in self.train_seeds]


def _warmup(env_args: dict[str, Any]) -> int:
    from marketsim.futures.config import FuturesConfig

    cfg = FuturesConfig.from_kwargs(**{k: v for k, v in env_args.items()
                                       if k not in ("data", "funding", "data_seed")})
    return cfg.window + cfg.vol_window


def algo_sets(sets: dict[str, Any], algo: str) -> dict[str, Any]:
    """Settings for ``algo``: plain keys, plus ``<algo>.key`` keys with the prefix removed
    (``ppo.n_steps=256`` applies to PPO only)."""
    from rlcore.config import ALGOS

    out = {}
    for k, v in sets.items():
        head, dot, tail = k.partition(".")
        if dot and head in ALGOS:
            if head == algo:
                out[tail] = v
        else:
            out[k] = v
    return out


def _overrides(job: dict[str, Any]) -> dict[str, Any]:
    return {"algo": job["algo"], "env": job["env"], "steps": job["steps"], "seed": job["seed"],
            "progress": False, "env_kwargs": {**job["env_args"], "data": job["train_path"]},
            **algo_sets(job["sets"], job["algo"])}


def _train_fold(job: dict[str, Any]) -> dict[str, Any]:
    """Worker: train one algorithm on one fold's train file, backtest on its test file."""
    import torch

    from marketsim.data import load_candles
    from rlcore.config import resolve_configs
    from rlcore.training import train

    torch.set_num_threads(1)
    t0 = time.perf_counter()
    run_cfg, algo_cfg = resolve_configs(_overrides(job))
    summary, _ = train(run_cfg, algo_cfg, job["run_dir"])
    policy = load_run_policy(job["run_dir"])
    scores = None
    if job.get("val_path"):  # eq. (17): scored on the validation slice, after costs
        from marketsim.evaluation.validation import validation_score

        val = backtest_frames(load_candles(job["val_path"], clean=False), policy)["agent"]
        write_csv(Path(job["run_dir"]) / "validation_equity.csv", val)
        scores = validation_score(val)
    test = load_candles(job["test_path"], clean=False)
    frame = backtest_frames(test, policy)["agent"]
    write_csv(Path(job["run_dir"]) / "test_equity.csv", frame)
    return {"fold": job["fold"], "algo": job["algo"], "name": job["name"], "frame": frame,
            "run_dir": job["run_dir"], "train_wall_s": summary.get("wall_s", 0.0),
            "validation": scores, "wall_s": time.perf_counter() - t0}


def _ensemble_frame(run_dirs: list[str], test_path: str) -> pd.DataFrame:
    """Backtest of the blend of a fold's trained agents on its test file."""
    from marketsim.data import load_candles
    from marketsim.evaluation.backtest import simulate
    from marketsim.evaluation.blend import seed_ensemble

    pol = seed_ensemble([load_run_policy(d) for d in run_dirs])
    test = load_candles(test_path, clean=False)
    return simulate(test, pol.env_kwargs, pol.decider(), pol.frame_stack)


def run_walkforward(spec: WalkForwardSpec, progress: Callable[[str], None] | None = None,
                    min_days: float = MIN_ANNUAL_DAYS) -> Path:
    """Run every fold (in ``spec.workers`` spawned processes when > 1); returns the path of
    ``walkforward.json``. ``progress`` receives a line as each training starts and ends (the
    command prints them); the page shows annualised metrics only for windows of at least
    ``min_days`` UTC days (the chained curve usually; a single fold rarely)."""
    say = progress or (lambda line: None)
    from marketsim.data import load_candles
    from marketsim.data.store import frame_to_parquet_bytes
    from rlcore.config import ALGOS
    from rlcore.io import atomic_write_bytes

    for a in spec.algos:
        if a not in ALGOS:
            raise ValueError(f"--algo {a!r}: expected one of {', '.join(ALGOS)}")
    if spec.env != "marketsim/CryptoFutures-v0":
        raise ValueError(f"--env {spec.env!r}: walk-forward supports marketsim/CryptoFutures-v0")
    train, test = parse_duration(spec.train, "--train"), parse_duration(spec.test, "--test")
    step = parse_duration(spec.step, "--step")
    env_args = dict(spec.env_args)
    warmup = _warmup(env_args)
    from rlcore.config import resolve_configs

    for _, a, sets in spec.candidates():  # fail before any work on a bad --set
        if a not in ALGOS:
            raise ValueError(f"variant algorithm {a!r}: expected one of {', '.join(ALGOS)}")
        resolve_configs(_overrides({"algo": a, "env": spec.env, "steps": spec.steps,
                                    "seed": spec.seed, "env_args": spec.env_args_of(a),
                                    "train_path": "-", "sets": sets}))
    val_span = None
    if spec.validation:
        from marketsim.evaluation.validation import (
            gate,
            gate_record,
            split_validation,
            validation_slices,
        )

        val_span = parse_duration(spec.validation, "--validation")
        split_validation(pd.Timestamp(0), pd.Timestamp(0) + train, val_span)  # fail early
    from marketsim.evaluation.backtest import slice_candles

    df = slice_candles(load_candles(spec.data), spec.start, spec.end)
    folds = make_folds(df.index, train, test, step, spec.max_folds, spec.align)
    if spec.ensemble and len(spec.candidates()) * len(spec.train_seeds) < 2:
        raise ValueError("ensemble: needs two or more trained agents per fold (algorithms x "
                         "seeds)")
    out = Path(spec.out)
    if out.exists() and any(out.iterdir()):
        raise ValueError(f"--out {out}: exists and is not empty; choose a new folder")
    out.mkdir(parents=True, exist_ok=True)
    cols = ["open", "high", "low", "close", "volume"]
    jobs, fold_rows = [], []
    baselines: dict[int, dict[str, pd.DataFrame]] = {}
    for f in folds:
        tr, te = fold_slices(df[cols], f, warmup)
        fdir = out / f"fold_{f.index:03d}"
        tp, sp = fdir / "train.parquet", fdir / "test.parquet"
        atomic_write_bytes(tp, frame_to_parquet_bytes(tr))
        atomic_write_bytes(sp, frame_to_parquet_bytes(te))
        baselines[f.index] = backtest_frames(te, None)
        fold_rows.append({**f.to_dict(), "train_bars": len(tr), "test_bars": len(te) - warmup,
                          "warmup_bars": warmup, "train_file": str(tp.relative_to(out)),
                          "test_file": str(sp.relative_to(out))})
        fit_path = val_path = None
        if val_span is not None:  # eq. (17): fit and validation files inside the train window
            split = split_validation(f.train_start, f.train_end, val_span)
            fit, val = validation_slices(df[cols], split, warmup)
            fit_path, val_path = fdir / "fit.parquet", fdir / "validation.parquet"
            atomic_write_bytes(fit_path, frame_to_parquet_bytes(fit))
            atomic_write_bytes(val_path, frame_to_parquet_bytes(val))
            fold_rows[-1]["validation"] = {**split.to_dict(), "fit_bars": len(fit),
                                           "fit_file": str(fit_path.relative_to(out)),
                                           "validation_file": str(val_path.relative_to(out))}
        for label, a, sets in spec.candidates():
            for sd in spec.train_seeds:
                name = spec.strategy(label, sd)
                jobs.append({"fold": f.index, "algo": a, "name": name, "env": spec.env,
                             "steps": spec.steps, "seed": sd, "sets": sets,
                             "env_args": spec.env_args_of(a),
                             "train_path": str(fit_path or tp),
                             "val_path": str(val_path) if val_path else None,
                             "test_path": str(sp), "run_dir": str(fdir / name)})
    t0 = time.perf_counter()
    windows = {f.index: f"{f.test_start.date()}..{f.test_end.date()}" for f in folds}
    seeds_txt = f" x {len(spec.train_seeds)} seeds" if len(spec.train_seeds) > 1 else ""
    say(f"walk-forward: {len(folds)} folds x {len(spec.candidates())} algorithms{seeds_txt} = "
        f"{len(jobs)} trainings of {spec.steps:,} steps ({spec.workers} worker(s)); "
        f"writing {out}")

    def done(k: int, r: dict[str, Any]) -> None:
        e = r["frame"]["equity"]
        say(f"[{k}/{len(jobs)}] fold {r['fold']} (test {windows[r['fold']]}) {r['name']}: "
            f"trained and tested in {r['wall_s']:.0f} s, test return "
            f"{fmt('total_return', float(e.iloc[-1] / e.iloc[0] - 1))}; "
            f"{time.perf_counter() - t0:.0f} s elapsed")

    if spec.workers > 1:
        ctx = multiprocessing.get_context("spawn")
        with cf.ProcessPoolExecutor(spec.workers, mp_context=ctx) as ex:
            futures = [ex.submit(_train_fold, j) for j in jobs]
            for k, fut in enumerate(cf.as_completed(futures), 1):
                done(k, fut.result())
            results = [f.result() for f in futures]
    else:
        results = []
        for k, j in enumerate(jobs, 1):
            say(f"[{k}/{len(jobs)}] fold {j['fold']} (test {windows[j['fold']]}) {j['name']}: "
                "training ...")
            results.append(_train_fold(j))
            done(k, results[-1])
    names = spec.seed_names()
    frames: dict[str, dict[int, pd.DataFrame]] = {n: {} for n in names}
    for r in results:
        frames[r["name"]][r["fold"]] = r["frame"]
    picks: dict[int, dict[str, Any]] = {}
    if spec.ensemble:
        frames["ensemble"] = {}
        for f in folds:
            dirs = [j["run_dir"] for j in jobs if j["fold"] == f.index]
            frames["ensemble"][f.index] = _ensemble_frame(dirs, next(
                j["test_path"] for j in jobs if j["fold"] == f.index))
            say(f"fold {f.index} (test {windows[f.index]}) ensemble of {len(dirs)} agents: "
                "tested")
    if val_span is not None:  # eq. (18): the gate, from validation scores alone
        frames["validated"] = {}
        for f in folds:
            scores = {r["name"]: r["validation"] for r in results if r["fold"] == f.index}
            pick = gate(scores)
            frames["validated"][f.index] = (frames[pick][f.index] if pick
                                            else baselines[f.index]["flat"])
            picks[f.index] = gate_record(scores, pick)  # the windows are in the fold's row
            say(f"fold {f.index} (test {windows[f.index]}) validation gate: "
                + (f"picked {pick} (validation return "
                   f"{fmt('total_return', scores[pick]['total_return'])})" if pick
                   else "flat (no candidate beat flat on validation)"))
    wall = time.perf_counter() - t0
    for b in ("flat", "buy_and_hold"):
        frames[b] = {i: baselines[i][b] for i in baselines}
    from marketsim.evaluation.backtest import baseline_kwargs
    from marketsim.evaluation.backtest_report import equity_floor

    base_floor, agent_floor = equity_floor(baseline_kwargs(env_args)), equity_floor(env_args)
    floors = {k: base_floor if k in ("flat", "buy_and_hold") else agent_floor for k in frames}
    e0 = float(next(iter(baselines.values()))["flat"]["equity"].iloc[0])
    for row in fold_rows:
        i = row["fold"] = row.pop("index")
        row["metrics"] = {k: scorecard(v[i], floors[k], spec.seed, spec.n_boot)
                          for k, v in frames.items()}
        if i in picks:
            row["validation"] = {**row["validation"], **picks[i]}
    chained = {k: chain_frames([v[i] for i in sorted(v)], e0) for k, v in frames.items()}
    chains = {k: f["equity"] for k, f in chained.items()}
    oos = {k: {**scorecard(f, floors[k], spec.seed, spec.n_boot),
               **chain_ruin([r["metrics"][k] for r in fold_rows])}
           for k, f in chained.items()}
    table = pd.DataFrame({f"equity_{k}": c.to_numpy() for k, c in chains.items()},
                         index=next(iter(chains.values())).index.strftime("%Y-%m-%dT%H:%M:%SZ"))
    table.index.name = "timestamp"
    write_csv(out / "oos_equity.csv", table)
    first_algo = names[0]
    plot_frames = {first_algo: chained[first_algo],
                   **{k: f for k, f in chained.items() if k != first_algo}}
    markers = [f.test_start for f in folds]
    plot_backtest(plot_frames, out / "walkforward.png",
                  f"walk-forward out-of-sample: {', '.join(spec.algos)} "
                  f"(train {spec.train}, test {spec.test}, step {spec.step})", markers)
    _plot_folds(fold_rows, out / "folds.png", list(frames))
    report = {
        "spec": {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(spec).items()
                 if k not in ("out", "workers")},
        "folds": fold_rows, "oos": oos, "n_folds": len(folds),
        "oos_start": chains[first_algo].index[0].isoformat(),
        "oos_end": chains[first_algo].index[-1].isoformat(),
    }
    report["min_annual_days"] = min_days
    fold_tab = _fold_table(fold_rows, list(frames))
    from marketsim.evaluation.backtest_report import CONVENTIONS

    settings = {"walk-forward": {k: v for k, v in report["spec"].items()
                                 if k not in ("sets", "env_args", "algo_env_args")},
                "training settings (--set)": dict(spec.sets),
                "environment (--env-arg)": dict(spec.env_args),
                "environment per algorithm": {a: dict(kv) for a, kv in spec.algo_env_args}}
    write_html(out / "walkforward.html", "walk-forward report",
               [("Out-of-sample (chained folds, "
                 f"{oos[first_algo]['n_days']:.0f} UTC days)", metrics_table(oos, min_days=min_days)),
                ("Folds: total return of each test window", fold_tab),
                *([("Validation gate (eq. (18)): each fold's pick from the validation slice",
                    _gate_table(fold_rows))] if picks else []),
                ("Settings", settings_html(settings)
                 + f"<p>wall time {wall:.0f} s (not in the JSON).</p>"),
                ("Conventions", conventions_html(CONVENTIONS, min_days))],
               ["walkforward.png", "folds.png"])
    return write_json(out / "walkforward.json", report)


def _fold_table(rows: list[dict[str, Any]], names: list[str]) -> str:
    head = "".join(f"<th>{n}</th>" for n in names)
    body = "".join(
        f"<tr><td>{r['fold']}</td><td>{r['test_start'][:10]}</td>"
        + "".join(f"<td>{100 * r['metrics'][n]['total_return']:.2f}%{_ruined_note(r['metrics'][n])}"
                  "</td>" for n in names)
        + "</tr>" for r in rows)
    return (f"<table id='folds'><thead><tr><th>fold</th><th>test start</th>{head}</tr></thead>"
            f"<tbody>{body}</tbody></table>")


def _gate_table(rows: list[dict[str, Any]]) -> str:
    """Per fold: the validation window, every candidate's validation return and the pick."""
    body = ""
    for r in rows:
        v = r["validation"]
        cells = ", ".join(f"{n} {100 * s['total_return']:+.2f}%"
                          for n, s in sorted(v["scores"].items()))
        body += (f"<tr><td>{r['fold']}</td><td>{v['val_start'][:10]}..{v['val_end'][:10]}</td>"
                 f"<td>{v['picked'] or 'flat (gate)'}</td><td>{cells}</td></tr>")
    return ("<table id='gate'><thead><tr><th>fold</th><th>validation</th><th>picked</th>"
            f"<th>validation return after costs</th></tr></thead><tbody>{body}</tbody></table>")


def _ruined_note(m: dict[str, Any]) -> str:
    """`` (ruined at <UTC time>)`` for a ruined fold, else ''."""
    return f" (ruined at {str(m['ruined_at'])[:16]} UTC)" if m.get("ruined") else ""


def _plot_folds(rows: list[dict[str, Any]], path: Path, names: list[str]) -> Path:
    """Grouped bars: each fold's test-window total return per strategy."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from marketsim.evaluation.report import _save_png

    fig, ax = plt.subplots(figsize=(10, 3.5))
    x = np.arange(len(rows))
    w = 0.8 / max(len(names), 1)
    for j, n in enumerate(names):
        ax.bar(x + j * w, [100 * r["metrics"][n]["total_return"] for r in rows], w, label=n)
    ax.set_xticks(x + 0.4 - w / 2, [r["test_start"][:10] for r in rows], rotation=45,
                  fontsize=7)
    ax.set_ylabel("test-window return %")
    ax.axhline(0, color="k", lw=0.6)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return _save_png(fig, path)
