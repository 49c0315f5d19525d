"""Live execution: a trained futures agent trading through a broker, paper by default.

* :mod:`~marketsim.live.broker`: the ``Broker`` protocol (place, cancel, positions, balance,
  order and fill events);
* :mod:`~marketsim.live.paper`: ``PaperBroker``, fills with the futures environment's kernel;
* :mod:`~marketsim.live.exchange`: ``CcxtBroker``, ccxt REST and WebSocket (``ccxt.pro``);
* :mod:`~marketsim.live.trader`: the trader loop (decisions, order tasks, reconciliation);
* :mod:`~marketsim.live.journal`: the append-only journal that makes restarts safe;
* :mod:`~marketsim.live.risk`: position and leverage caps, reduce-only mode, the kill switch;
* :mod:`~marketsim.live.bars`, :mod:`~marketsim.live.sizing`: the environment's observation
  and its meaning of an action, for bars that arrive one at a time;
* :mod:`~marketsim.live.feeds`, :mod:`~marketsim.live.session`, :mod:`~marketsim.live.cli`:
  bar feeds, session assembly, ``python cli.py trade``.

docs/guide/live-trading.md explains the architecture and the safety rules.
"""

from marketsim.live.broker import Broker
from marketsim.live.orders import Account, Bar, OrderRequest, OrderUpdate
from marketsim.live.paper import PaperBroker
from marketsim.live.risk import RiskLimits
from marketsim.live.trader import Trader, TraderConfig

__all__ = ["Broker", "PaperBroker", "Trader", "TraderConfig", "RiskLimits", "Account", "Bar",
           "OrderRequest", "OrderUpdate"]
