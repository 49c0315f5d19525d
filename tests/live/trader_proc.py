"""A live trader in its own process, on the fake exchange: ``python -m tests.live.trader_proc
PORT JOURNAL``. Keys come from the environment (``MARKETSIM_BINANCEUSDM_API_KEY`` /
``_SECRET``), bars from the fake's kline stream. The policy goes long after an up bar and short
after a down bar, so the test decides what it wants by the bars it pushes. The restart test
kills it with SIGKILL and starts it again on the same journal."""

from __future__ import annotations

import asyncio
import sys

import numpy as np

from marketsim.live.exchange import live_credentials, make_live_exchange
from marketsim.live.session import live_session
from tests.live.fake_exchange import point_exchange
from tests.live.live_helpers import small_cfg


def follow_the_last_bar(obs: np.ndarray) -> np.ndarray:
    """+0.5 after an up bar, -0.5 after a down bar (obs[15]: the newest bar's log return)."""
    return np.array([0.5 if obs[15] > 0 else -0.5], np.float32)


async def main(port: int, journal: str) -> None:
    """Trade until killed."""
    creds = live_credentials("binanceusdm")
    ex = make_live_exchange("binanceusdm", creds,
                            config={"timeout": 3000, "options": {"recvWindow": 2000}})
    point_exchange(ex, port)
    trader, feed = live_session(follow_the_last_bar, small_cfg(max_leverage=2.0), ex, "ETH/USDT",
                                "1m", journal, creds, order_entry="rest", place_timeout=30.0,
                                stale_after=2.0, reconcile_every=0.5, reconcile_backoff=0.05)
    print("started", flush=True)
    await trader.run(feed)


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), sys.argv[2]))
