"""Perpetual-futures trading environment: fees, slippage, funding, isolated margin, liquidation.

One batched step kernel (:mod:`marketsim.futures.kernel`) drives two views:
:class:`~marketsim.futures.env.CryptoFuturesEnv` (a ``gymnasium.Env``, one environment) and
:class:`~marketsim.futures.vector.CryptoFuturesVectorEnv` (a ``gymnasium.vector.VectorEnv``, N
environments in one numpy computation). The teaching page is ``docs/marketsim/futures.md``.
"""

from marketsim.futures.config import FuturesConfig
from marketsim.futures.margin import BINANCE_BTCUSDT_BRACKETS, Brackets, liquidation_price

__all__ = [
    "BINANCE_BTCUSDT_BRACKETS",
    "Brackets",
    "FuturesConfig",
    "liquidation_price",
]
