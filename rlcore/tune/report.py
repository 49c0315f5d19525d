"""The study's results in its folder: ``best.yaml`` (what ``python cli.py train --config
best.yaml`` repeats), ``trials.csv``, ``study.html`` (Optuna's own plots: optimisation history,
parameter importances, intermediate values) and ``summary.json``. Every file is written
atomically."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from rlcore.io import atomic_write_json, atomic_write_text
from rlcore.tune.spec import TuneSpec
from rlcore.tune.study import counts

__all__ = ["write_results", "trials_csv", "study_html", "best_yaml"]


def trials_csv(study: optuna.Study) -> str:
    """One row per trial: number, state, value, parameters, seed scores, reason, times."""
    df = study.trials_dataframe(attrs=("number", "state", "value", "params", "user_attrs",
                                       "datetime_start", "datetime_complete", "duration"))
    df = df.drop(columns=[c for c in df.columns if c == "user_attrs_config"])
    return df.to_csv(index=False)


def best_yaml(study: optuna.Study, spec: TuneSpec) -> str:
    """The best trial's config (its first seed) with a header saying where it comes from."""
    import yaml

    best = study.best_trial
    head = (f"# study {spec.study}: trial {best.number}, median score {best.value:.6g} over "
            f"seeds {list(spec.seeds)} (this file's seed: {spec.seeds[0]})\n"
            f"# parameters: {best.params}\n"
            "# reproduce: python cli.py train --config best.yaml\n")
    return head + yaml.safe_dump(best.user_attrs["config"], sort_keys=False)


def study_html(study: optuna.Study, title: str) -> str:
    """One page with Optuna's plotly figures; a figure that cannot be drawn yet (too few
    complete trials) is replaced by a line saying why."""
    from optuna import visualization as vis

    parts = []
    for name, fn in (("Optimisation history", vis.plot_optimization_history),
                     ("Parameter importances", vis.plot_param_importances),
                     ("Intermediate values", vis.plot_intermediate_values),
                     ("Parallel coordinates", vis.plot_parallel_coordinate)):
        try:
            fig = fn(study)
            first = not parts or all("plotly" not in p for p in parts)
            parts.append(f"<h2>{name}</h2>" + fig.to_html(full_html=False,
                                                            include_plotlyjs=first))
        except Exception as e:  # e.g. importances need two complete trials
            parts.append(f"<h2>{name}</h2><p>not available: {type(e).__name__}: {e}</p>")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title></head>"
            f"<body><h1>{title}</h1>{''.join(parts)}</body></html>")


def write_results(study: optuna.Study, spec: TuneSpec) -> dict[str, Any]:
    """Write the results files; return the summary (also in ``summary.json``)."""
    folder = Path(spec.folder)
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_text(folder / "trials.csv", trials_csv(study))
    atomic_write_text(folder / "study.html", study_html(study, f"study {spec.study}"))
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    summary: dict[str, Any] = {"study": spec.study, "trials": counts(study),
                               "command": spec.command, "seeds": list(spec.seeds),
                               "space": spec.space, "pruner": spec.pruner,
                               "files": {"trials": str(folder / "trials.csv"),
                                         "html": str(folder / "study.html")}}
    if complete:
        best = study.best_trial
        atomic_write_text(folder / "best.yaml", best_yaml(study, spec))
        summary.update(best_trial=best.number, best_value=best.value, best_params=best.params,
                       best_seed_scores=best.user_attrs.get("seed_scores"))
        summary["files"]["best"] = str(folder / "best.yaml")
    pruned = study.get_trials(deepcopy=False, states=(TrialState.PRUNED,))
    summary["pruned_reasons"] = {t.number: t.user_attrs.get("reason", "") for t in pruned}
    atomic_write_json(folder / "summary.json", summary)
    return summary
