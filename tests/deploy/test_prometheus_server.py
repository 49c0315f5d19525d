"""A real Prometheus server (Debian's ``prometheus`` package; ``.ci/run`` installs it) started
on 127.0.0.1 with a temp config scrapes a paper-trading A/B run through the exporter, and its
HTTP API returns the equity series."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import threading
import time
import urllib.parse
import urllib.request

import pytest

from marketsim.deploy.experiment import ab_replay, momentum_policy
from marketsim.deploy.exporter import TradingMetrics, serve
from tests.live.live_helpers import ETH_1M

PROMETHEUS = shutil.which("prometheus")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> dict:
    return json.loads(urllib.request.urlopen(url, timeout=5).read().decode())


@pytest.mark.skipif(PROMETHEUS is None, reason="the prometheus binary is not installed "
                    "(Debian package 'prometheus'; .ci/run installs it as root)")
def test_prometheus_scrapes_a_paper_trading_run(tmp_path):
    if not ETH_1M.exists():
        pytest.skip(f"shared data file {ETH_1M} not found")
    from marketsim.data import load_candles

    metrics = TradingMetrics()
    exporter = serve(metrics.registry, 0)
    port = _free_port()
    (tmp_path / "prometheus.yml").write_text(
        "global: {scrape_interval: 200ms, scrape_timeout: 200ms}\n"
        "scrape_configs:\n"
        "  - job_name: marketsim\n"
        f"    static_configs: [{{targets: ['127.0.0.1:{exporter.server_port}']}}]\n")
    proc = subprocess.Popen([PROMETHEUS, f"--config.file={tmp_path / 'prometheus.yml'}",
                             f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                             f"--web.listen-address=127.0.0.1:{port}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    api = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(f"{api}/-/ready", timeout=1)
                break
            except OSError:
                assert proc.poll() is None, proc.stderr.read()
                time.sleep(0.05)
        for _ in range(300):  # Prometheus applies a new scrape config within about 5 s
            targets = _get(f"{api}/api/v1/targets")["data"]["activeTargets"]
            if targets and targets[0]["health"] == "up":
                break
            time.sleep(0.05)
        candles = load_candles(ETH_1M).iloc[:80][["open", "high", "low", "close", "volume"]]
        t0 = time.time()
        result: dict = {}
        # 80 bars at 2400x: 25 ms a bar, about 2 s of trading, scraped every 200 ms
        worker = threading.Thread(target=lambda: result.update(ab_replay(
            candles, momentum_policy(seed=0), momentum_policy(seed=1), tmp_path / "ab",
            metrics=metrics, speed=2400.0)))
        worker.start()
        worker.join(60)
        time.sleep(0.6)  # the last values are scraped
        final = result["variants"]["champion"]["equity_end"]
        query = urllib.parse.urlencode({"query": 'marketsim_equity{variant="champion"}',
                                        "start": t0 - 1, "end": time.time(), "step": "0.2"})
        for _ in range(50):
            data = _get(f"{api}/api/v1/query_range?{query}")
            series = data["data"]["result"]
            if series and float(series[0]["values"][-1][1]) == pytest.approx(final):
                break
            time.sleep(0.1)
        assert data["status"] == "success"
        assert series and series[0]["metric"]["job"] == "marketsim"
        values = [float(v) for _, v in series[0]["values"]]
        assert len(values) >= 5 and len(set(values)) >= 2, values  # a series, not one point
        assert values[-1] == pytest.approx(final)
    finally:
        exporter.shutdown()
        proc.terminate()
        proc.wait(10)
