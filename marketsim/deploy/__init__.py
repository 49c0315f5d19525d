"""Deploying safely: a model registry of plain files, A/B trading with automatic rollback, and
Prometheus metrics (docs/guide/deployment.md).

* :mod:`~marketsim.deploy.registry`: content-addressed models (weights, config, hparams.yaml,
  data sha256, code version, metrics); :mod:`~marketsim.deploy.aliases`: atomic aliases;
* :mod:`~marketsim.deploy.stats`, :mod:`~marketsim.deploy.ab`: the statistics and the rule;
* :mod:`~marketsim.deploy.lockstep`, :mod:`~marketsim.deploy.deployment`: two traders side by
  side; :mod:`~marketsim.deploy.experiment`: the rule's calibration on replayed bars;
* :mod:`~marketsim.deploy.exporter`: the Prometheus exporter; :mod:`~marketsim.deploy.cli`:
  ``python cli.py models``.
"""
