"""A :class:`~rlcore.sinks.LogSink` that exposes a training run to Prometheus.

Pass it to a :class:`~rlcore.runner.Runner` (alone, or beside another sink through
:class:`rlcore.sinks.TeeSink`); it turns the runner's named scalars into gauges of its own registry:

* ``charts/sps`` -> ``rlcore_train_steps_per_second``;
* ``charts/episode_return`` -> ``rlcore_train_episode_return``;
* ``losses/<name>`` -> ``rlcore_train_loss{name="<name>"}``;
* ``hparams/<name>`` -> ``rlcore_train_hparam{name="<name>"}`` (every value, after every change);
* anything else -> ``rlcore_train_scalar{name="<tag>"}``;

plus ``rlcore_train_step``, ``rlcore_train_eval_return_mean``,
``rlcore_train_hparam_changes_total{field}`` and ``rlcore_train_control_rejections_total``.
Every series carries the label ``run``. Serve the registry with :meth:`PrometheusSink.serve`
(127.0.0.1 by default). rlcore knows no market: this module imports nothing of marketsim.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server

from rlcore.hparams import Change
from rlcore.sinks import TeeSink

__all__ = ["PrometheusSink", "TeeSink", "TRAINING_METRICS"]

TRAINING_METRICS: dict[str, tuple[str, tuple[str, ...], str]] = {
    "rlcore_train_step": ("gauge", ("run",), "environment steps so far"),
    "rlcore_train_steps_per_second": ("gauge", ("run",), "environment steps per second"),
    "rlcore_train_episode_return": ("gauge", ("run",), "return of the last finished episode"),
    "rlcore_train_loss": ("gauge", ("run", "name"), "the update's losses/<name> values"),
    "rlcore_train_hparam": ("gauge", ("run", "name"), "current hyperparameter values"),
    "rlcore_train_scalar": ("gauge", ("run", "name"), "every other logged scalar, by tag"),
    "rlcore_train_eval_return_mean": ("gauge", ("run",), "mean return of the last evaluation"),
    "rlcore_train_hparam_changes_total": ("counter", ("run", "field"), "applied changes"),
    "rlcore_train_control_rejections_total": ("counter", ("run",), "refused control edits"),
}
"""name: (type, labels, meaning); docs/guide/deployment.md lists the same."""


class PrometheusSink:
    """Training scalars as Prometheus gauges (see the module docstring).

    Args:
        run: the value of the ``run`` label (the run id).
        registry: where the metrics live (a new ``CollectorRegistry`` by default).
    """

    def __init__(self, run: str, registry: CollectorRegistry | None = None) -> None:
        self.run = str(run)
        self.registry = registry if registry is not None else CollectorRegistry()
        self.m: dict[str, Any] = {}
        for name, (kind, labels, doc) in TRAINING_METRICS.items():
            if kind == "counter":
                self.m[name] = Counter(name[: -len("_total")], doc, labels,
                                       registry=self.registry)
            else:
                self.m[name] = Gauge(name, doc, labels, registry=self.registry)
        for name, (_, labels, _) in TRAINING_METRICS.items():
            if labels == ("run",):  # the series exist (at 0) before the first record
                self.m[name].labels(self.run)

    def scalars(self, values: dict[str, float], step: int) -> None:
        """Each scalar into its gauge; the step into ``rlcore_train_step``."""
        m, run = self.m, self.run
        m["rlcore_train_step"].labels(run).set(step)
        for tag, value in values.items():
            value = float(value)
            if tag == "charts/sps":
                m["rlcore_train_steps_per_second"].labels(run).set(value)
            elif tag == "charts/episode_return":
                m["rlcore_train_episode_return"].labels(run).set(value)
            elif tag.startswith("losses/"):
                m["rlcore_train_loss"].labels(run, tag[7:]).set(value)
            elif tag.startswith("hparams/"):
                m["rlcore_train_hparam"].labels(run, tag[8:]).set(value)
            else:
                m["rlcore_train_scalar"].labels(run, tag).set(value)

    def change(self, change: Change) -> None:
        """Count the change (its new value reaches ``rlcore_train_hparam`` as a scalar)."""
        self.m["rlcore_train_hparam_changes_total"].labels(self.run, change.field).inc()

    def rejection(self, step: int, field: str, value: Any, reason: str) -> None:
        """Count the refusal."""
        self.m["rlcore_train_control_rejections_total"].labels(self.run).inc()

    def evaluation(self, result: dict[str, float], step: int) -> None:
        """The evaluation's mean return."""
        self.m["rlcore_train_eval_return_mean"].labels(self.run).set(
            float(result["eval_return_mean"]))

    def close(self) -> None:
        """Nothing to release (a server started by :meth:`serve` is stopped by its owner)."""

    def serve(self, port: int = 9109, addr: str = "127.0.0.1") -> Any:
        """Serve the metrics at ``http://addr:port/metrics`` (a daemon thread); returns the
        server (``.shutdown()`` stops it; port 0 picks a free one: ``.server_port``)."""
        server, _ = start_http_server(port, addr=addr, registry=self.registry)
        return server

