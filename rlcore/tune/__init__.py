"""Hyperparameter tuning: an Optuna study whose trials are ordinary runs, and population-based
training over the engine's one door for changes (docs/guide/tuning.md).

``space`` (search spaces), ``objective`` (a trial: runs over seeds, evaluations reported through a
sink), ``study`` (storage, sampler, pruner, the worker loop), ``backends`` (local processes or
Ray tasks on one storage), ``report`` (best.yaml, trials.csv, study.html) and ``pbt``.
"""
