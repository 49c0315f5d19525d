"""A bar feed that hands one bar at a time to a trader and tells when the trader is done with it.

The A/B deployment drives two unchanged :class:`~marketsim.live.trader.Trader` loops from one
source of bars: it puts a bar in each trader's feed and waits until each has asked for the next
one, which a trader does only once it has finished the bar (settled its orders in a replay,
decided, started its order task). Then both books are marked at the same bar and can be compared.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from marketsim.live.orders import Bar

__all__ = ["LockstepFeed"]


class LockstepFeed:
    """Feed of ``(bar, live)`` items put from outside; :meth:`wait_idle` returns once the
    consumer asks for the next item (or ``task``, the consumer, has ended)."""

    def __init__(self) -> None:
        self._q: asyncio.Queue[tuple[Bar, bool] | None] = asyncio.Queue()
        self._idle = asyncio.Event()

    def put(self, bar: Bar, live: bool = True) -> None:
        """Hand on a bar (the feed is busy until the consumer comes back for the next)."""
        self._idle.clear()
        self._q.put_nowait((bar, live))

    def close(self) -> None:
        """End the iteration after the items already put."""
        self._q.put_nowait(None)

    async def wait_idle(self, task: asyncio.Future) -> None:
        """Until the consumer is back for another item, or ``task`` is done."""
        idle = asyncio.ensure_future(self._idle.wait())
        try:
            await asyncio.wait({idle, task}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            idle.cancel()

    async def __aiter__(self) -> AsyncIterator[tuple[Bar, bool]]:
        while True:
            if self._q.empty():
                self._idle.set()
            item = await self._q.get()
            if item is None:
                self._idle.set()
                return
            yield item
