"""Market data: readers, cleaning, the local store, exchange loading (ccxt) and statistics.

The exchange loader (:mod:`marketsim.data.ccxt_loader`) and the click group
(:mod:`marketsim.data.cli`) are imported on demand. See docs/marketsim/data.md.
"""

from marketsim.data.clean import CleaningThresholds, clean_candles
from marketsim.data.load import load_candles, read_candles
from marketsim.data.readers import from_ccxt_ohlcv, read_csv_candles
from marketsim.data.report import CleaningReport, Gap
from marketsim.data.schema import COLUMNS, DataError, validate_candles
from marketsim.data.store import DataStore, content_hash, default_store_root
from marketsim.data.timeframe import infer_timeframe, timeframe_to_timedelta

__all__ = [
    "COLUMNS",
    "CleaningReport",
    "CleaningThresholds",
    "DataError",
    "DataStore",
    "Gap",
    "clean_candles",
    "content_hash",
    "default_store_root",
    "from_ccxt_ohlcv",
    "infer_timeframe",
    "load_candles",
    "read_candles",
    "read_csv_candles",
    "timeframe_to_timedelta",
    "validate_candles",
]
