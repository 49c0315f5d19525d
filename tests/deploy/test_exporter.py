"""Monitoring: every documented metric is on the exporter with its labels; every query of the
Grafana dashboard names an exported metric; the docs list every metric; the training sink maps
the runner's scalars; rlcore's sink imports nothing of marketsim."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from marketsim.deploy.experiment import ab_replay, churn_policy, momentum_policy
from marketsim.deploy.exporter import METRICS, TradingMetrics, serve
from rlcore.prometheus_sink import TRAINING_METRICS, PrometheusSink, TeeSink
from rlcore.sinks import LogSink, MemorySink
from tests.live.live_helpers import ETH_1M

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "marketsim" / "deploy" / "grafana-dashboard.json"
DOCS = ROOT / "docs" / "guide" / "deployment.md"
SUFFIXES = ("_bucket", "_sum", "_count", "_created")


def scrape(port: int) -> dict[str, list[dict[str, str]]]:
    """Sample names on the exporter, with each sample's labels."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    out: dict[str, list[dict[str, str]]] = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out.setdefault(s.name, []).append(dict(s.labels))
    return out


def family(name: str) -> str:
    for suf in SUFFIXES:
        if name.endswith(suf):
            return name[: -len(suf)]
    return name


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A paper A/B replay of 150 real bars (the challenger rolled back) behind an exporter."""
    if not ETH_1M.exists():
        pytest.skip(f"shared data file {ETH_1M} not found")
    from marketsim.data import load_candles

    candles = load_candles(ETH_1M).iloc[:150][["open", "high", "low", "close", "volume"]]
    metrics = TradingMetrics()
    server = serve(metrics.registry, 0)
    summary = ab_replay(candles, momentum_policy(seed=0), churn_policy(0.5),
                        tmp_path_factory.mktemp("ab"), metrics=metrics)
    yield scrape(server.server_port), summary
    server.shutdown()


def test_every_trading_metric_is_exported_with_its_labels(served):
    samples, summary = served
    for name, (kind, labels, _) in METRICS.items():
        sample = name if kind != "histogram" else f"{name}_count"
        assert sample in samples, f"{sample} not exported"
        for lab in samples[sample]:
            assert set(lab) == set(labels), (name, lab)
        if labels == ("variant",):
            assert {lab["variant"] for lab in samples[sample]} == {"champion", "challenger"}
    assert samples["marketsim_ab_rollbacks_total"] == [{}]


def test_exporter_binds_localhost_by_default():
    import inspect

    assert inspect.signature(serve).parameters["addr"].default == "127.0.0.1"
    assert inspect.signature(PrometheusSink.serve).parameters["addr"].default == "127.0.0.1"


def _dashboard_exprs() -> list[str]:
    dash = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
    exprs += [v["query"] for v in dash["templating"]["list"]]
    return exprs


def test_every_dashboard_query_names_an_exported_metric(served):
    samples, _ = served
    exported = {family(n) for n in samples} | set(samples)
    sink = PrometheusSink("r")
    sink.scalars({"charts/sps": 1.0}, 1)
    exported |= set(TRAINING_METRICS) | {family(n) for n in TRAINING_METRICS}
    names_in = re.compile(r"\b((?:marketsim|rlcore)_[a-z0-9_]+)")
    seen = set()
    for expr in _dashboard_exprs():
        found = names_in.findall(expr)
        assert found, f"query names no metric: {expr}"
        for name in found:
            assert name in exported or family(name) in exported, f"{name} in {expr!r}"
            seen.add(family(name))
    assert {"marketsim_equity", "marketsim_execution_spread_bps",
            "marketsim_cancel_latency_seconds", "rlcore_train_loss"} <= seen


def test_docs_list_every_metric_with_its_labels():
    text = DOCS.read_text()
    for name, (_, labels, _) in {**METRICS, **TRAINING_METRICS}.items():
        row = next((ln for ln in text.splitlines() if ln.startswith(f"| `{name}` |")), None)
        assert row is not None, f"{name} is not in the metrics table of {DOCS.name}"
        for lab in labels:
            assert f"`{lab}`" in row, (name, lab)


def test_training_sink_maps_the_runners_scalars():
    from rlcore.config import resolve_configs
    from rlcore.runner import Runner, build_agent, build_envs

    run_cfg, algo_cfg = resolve_configs({"algo": "ppo", "env": "CartPole-v1", "n_envs": 2,
                                         "steps": 128, "progress": False, "log_every": 32,
                                         "n_steps": 16, "batch_size": 32, "n_epochs": 1})
    envs = build_envs(run_cfg, algo_cfg)
    sink = PrometheusSink("cartpole")
    assert isinstance(sink, LogSink)
    memory = MemorySink()
    runner = Runner(build_agent(run_cfg, algo_cfg, envs), envs, TeeSink(sink, memory), run_cfg)
    runner.run(128)
    runner.apply_change("gamma", 0.97, "test")
    sink.evaluation({"eval_return_mean": 21.0}, 128)
    envs.close()
    server = sink.serve(0)
    try:
        samples = scrape(server.server_port)
    finally:
        server.shutdown()
    for name, (_kind, labels, _) in TRAINING_METRICS.items():
        assert name in samples, f"{name} not exported"
        assert all(set(lab) == set(labels) for lab in samples[name]), name
    hp = {lab["name"] for lab in samples["rlcore_train_hparam"]}
    assert {"gamma", "learning_rate", "clip_range"} <= hp
    assert {lab["name"] for lab in samples["rlcore_train_loss"]} >= {"policy", "value"}
    assert samples["rlcore_train_hparam_changes_total"] == [{"run": "cartpole", "field": "gamma"}]
    assert memory.records  # the tee fed both
    assert samples["rlcore_train_eval_return_mean"] == [{"run": "cartpole"}]


def test_rlcore_sink_loads_no_marketsim():
    code = ("import sys, rlcore.prometheus_sink; "
            "assert not [m for m in sys.modules if m.startswith('marketsim')]")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_a_plain_trading_session_is_observed_through_its_feed(tmp_path):
    """``observing`` wraps a trader's feed: the metrics of variant ``main`` follow the book."""
    import asyncio

    from marketsim.deploy.exporter import observing
    from marketsim.live.bars import BarWindow
    from marketsim.live.feeds import ReplayFeed
    from marketsim.live.journal import Journal
    from marketsim.live.paper import PaperBroker
    from marketsim.live.trader import Trader, TraderConfig
    from tests.live.live_helpers import obs_policy, small_cfg, synthetic_candles

    cfg = small_cfg()
    window = BarWindow(cfg, 60_000)
    trader = Trader(obs_policy, cfg, PaperBroker(cfg, 60_000, window=window),
                    Journal(tmp_path / "j.jsonl", fsync=False),
                    TraderConfig("ETH/USDT", 60_000, settle=True), window=window)
    metrics = TradingMetrics()
    feed = observing(ReplayFeed(synthetic_candles(60), 60_000), trader, metrics)
    summary = asyncio.run(trader.run(feed))
    server = serve(metrics.registry, 0)
    try:
        text = urllib.request.urlopen(f"http://127.0.0.1:{server.server_port}/metrics").read()
    finally:
        server.shutdown()
    values = {(s.name, s.labels.get("variant")): s.value
              for fam in text_string_to_metric_families(text.decode()) for s in fam.samples}
    assert values[("marketsim_equity", "main")] == pytest.approx(summary["equity_end"])
    assert values[("marketsim_bars_total", "main")] == 60
    assert values[("marketsim_orders_placed_total", "main")] == summary["orders"] > 0
    assert values[("marketsim_decision_latency_seconds_count", "main")] == summary["decisions"]


def test_train_hands_every_record_to_an_extra_sink_too(tmp_path):
    """``rlcore.training.train(..., sink=)``: what ``train --metrics-port`` uses; the run folder
    keeps its own records."""
    from rlcore.config import resolve_configs
    from rlcore.training import train

    run, algo = resolve_configs({"algo": "ppo", "env": "CartPole-v1", "n_envs": 2, "steps": 128,
                                 "progress": False, "log_every": 32, "n_steps": 16,
                                 "batch_size": 32, "n_epochs": 1, "eval_episodes": 1,
                                 "eval_envs": 1})
    sink = PrometheusSink("cart")
    summary, _ = train(run, algo, tmp_path / "run", sink=sink)
    assert summary["status"] == "completed" and any((tmp_path / "run" / "tb").iterdir())
    server = sink.serve(0)
    try:
        samples = scrape(server.server_port)
    finally:
        server.shutdown()
    assert samples["rlcore_train_step"] == [{"run": "cart"}]
    assert {lab["name"] for lab in samples["rlcore_train_hparam"]} >= {"gamma", "clip_range"}
