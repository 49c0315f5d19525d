"""Honest evaluation: backtests with baselines, walk-forward analysis, stress windows, run
comparison and reports (docs/guide/evaluation.md). Metrics are in :mod:`marketsim.metrics`;
the blending agent is :class:`rlcore.ensemble.Ensemble`.

Command line: ``marketsim.evaluation.cli`` holds the click commands ``backtest``,
``walkforward`` and ``compare``.
"""
