"""kill -9 in the middle of an order, restart on the same journal: no order twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from marketsim.live.journal import read_journal
from tests.live.fake_exchange import FakeExchange
from tests.live.live_helpers import bar

ROOT = Path(__file__).resolve().parents[2]


def _start(fx: FakeExchange, journal: Path, log: Path) -> subprocess.Popen:
    env = {**os.environ, "MARKETSIM_BINANCEUSDM_API_KEY": fx.api_key,
           "MARKETSIM_BINANCEUSDM_SECRET": fx.secret, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "tests.live.trader_proc", str(fx.port),
                             str(journal)], cwd=ROOT, env=env, stdout=open(log, "ab"),
                            stderr=subprocess.STDOUT)


def _wait(pred, what: str, timeout: float = 60.0) -> None:
    """Poll ``pred`` every 50 ms, at most ``timeout`` seconds; fail naming ``what``."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _records(journal: Path, **match) -> list[dict]:
    return [r for r in read_journal(journal) if all(r.get(k) == v for k, v in match.items())]


def _push(fx: FakeExchange, i: int, close: float) -> None:
    fx.push_bar(bar(i, close).open_ms, close, close + 5, close - 5, close, 10)


def test_kill_9_between_send_and_answer_then_restart_places_no_order_twice(tmp_path):
    """The order of bar 13 reaches the exchange but neither its answer nor its stream events
    come back; the trader is killed with SIGKILL while it waits. Restarted on its journal, it
    asks the exchange about that order (filled), does not decide bar 13 again, and goes on
    trading: the exchange has each client order id once, and the position is the last
    decision's target."""
    journal, log = tmp_path / "journal.jsonl", tmp_path / "trader.log"
    with FakeExchange() as fx:
        for i in range(13):  # history for the features (up bars at the end)
            _push(fx, i, 2000.0 + i)
        fx.drop_next("place", process=True)
        proc = _start(fx, journal, log)
        try:
            _wait(fx.subscribed, "the first trader's kline subscription")
            fx.hold_events(True)  # nor does the order stream tell it
            _push(fx, 13, 2014.0)  # up: go long 0.5 -> buy 5
            _wait(lambda: _records(journal, kind="order", event="sent"), "the order sent")
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
        finally:
            proc.kill()
        fx.hold_events(False)  # to the dead process's sockets: lost
        first_cid = _records(journal, kind="order", event="sent")[0]["client_id"]
        assert fx.order(first_cid)["status"] == "FILLED"  # the exchange did take it
        assert not _records(journal, kind="order", client_id=first_cid, status="filled")

        proc = _start(fx, journal, log)
        try:
            _wait(lambda: _records(journal, client_id=first_cid, status="filled"),
                  "the restarted trader reconciling the order")
            _wait(fx.subscribed, "the second trader's kline subscription")
            _push(fx, 14, 2020.0)  # up again: already long, nothing to send
            _wait(lambda: len(_records(journal, kind="decision")) == 2, "bar 14 decided")
            _push(fx, 15, 2010.0)  # down: go short 0.5 -> sell ~10
            _wait(lambda: len(_records(journal, kind="order", event="sent")) == 2,
                  "bar 15's order")
            _wait(lambda: fx.position() < -4.0, "the short position")
        finally:
            proc.kill()
            proc.wait(10)

    decided = [r["bar_open_ms"] for r in _records(journal, kind="decision")]
    assert decided == [bar(i, 0).open_ms for i in (13, 14, 15)]  # bar 13 once
    ids = fx.client_ids()
    assert len(ids) == len(set(ids)) == 2 and ids[0] == first_cid
    assert fx.count("POST", "/fapi/v1/order") == 2  # no retry of the first order
    assert _records(journal, kind="order", event="recovered", client_id=first_cid)
    text = journal.read_text() + log.read_text()
    assert fx.api_key not in text and fx.secret not in text
