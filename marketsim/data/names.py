"""What a candle file's standard name says: exchange, symbol and timeframe.

``python cli.py data import FILE`` reads them from the name, so a file named as exchanges' dumps
and freqtrade name theirs needs no ``--symbol`` or ``--timeframe``:

* ``<exchange>[-spot]_<SYMBOL>_<timeframe>_<YYYYMMDD>_<YYYYMMDD>.<ext>``, e.g.
  ``binance-spot_ETHUSDT_1h_20170817_20230303.csv.gz`` or
  ``coinbase-spot_ETH-USD_1h_20170430_20221024.csv.gz`` (the files in ``../shared/data``);
* freqtrade's ``<BASE>_<QUOTE>-<timeframe>.<ext>``, e.g. ``ETH_USDT-1h.json`` (and
  ``BTC_USDT_USDT-1h-futures.feather`` for a USDT-margined perpetual).

A glued symbol (``ETHUSDT``) is split at the longest known quote currency at its end
(:data:`QUOTES`). Anything else gives None: the caller asks for the option instead of guessing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

__all__ = ["FileName", "QUOTES", "parse_file_name", "split_symbol"]

QUOTES = ("FDUSD", "USDT", "USDC", "BUSD", "TUSD", "USD", "EUR", "GBP", "TRY", "BTC", "ETH",
          "BNB")
"""Quote currencies recognised at the end of a glued symbol, longest first."""

_TF = r"\d+[smhdwM]"
_DUMP = re.compile(rf"^(?P<exchange>[a-z0-9]+)(?:-(?P<market>[a-z]+))?_(?P<symbol>[A-Za-z0-9-]+)"
                   rf"_(?P<tf>{_TF})_\d{{8}}_\d{{8}}$")
_FREQTRADE = re.compile(rf"^(?P<base>[A-Z0-9]+)_(?P<quote>[A-Z0-9]+)(?:_(?P<settle>[A-Z0-9]+))?"
                        rf"-(?P<tf>{_TF})(?:-(?P<kind>futures))?$")


@dataclass(frozen=True)
class FileName:
    """What a file name says; ``exchange`` is None where the name does not say it."""

    symbol: str
    """ccxt form: ``ETH/USDT``, or ``ETH/USDT:USDT`` for a USDT-margined perpetual."""
    timeframe: str
    exchange: str | None = None
    """ccxt id for spot (``binance-spot`` -> ``binance``), else as written."""


def split_symbol(text: str) -> str | None:
    """``ETHUSDT`` -> ``ETH/USDT``; ``ETH-USD`` -> ``ETH/USD``; None when no quote is known."""
    text = text.upper()
    if "-" in text:
        base, _, quote = text.partition("-")
        return f"{base}/{quote}" if base and quote and "-" not in quote else None
    for q in sorted(QUOTES, key=len, reverse=True):
        if text.endswith(q) and len(text) > len(q):
            return f"{text[:-len(q)]}/{q}"
    return None


def _stem(path: str | Path) -> str:
    name = Path(path).name
    for ext in (".csv.gz", ".json.gz", ".csv", ".json", ".parquet", ".feather", ".gz"):
        if name.endswith(ext):
            return name[:-len(ext)]
    return name


def parse_file_name(path: str | Path) -> FileName | None:
    """Exchange, symbol and timeframe of a standard candle file name, or None."""
    stem = _stem(path)
    m = _DUMP.match(stem)
    if m:
        symbol = split_symbol(m["symbol"])
        if symbol is None:
            return None
        exchange = m["exchange"] if m["market"] in (None, "spot") else \
            f"{m['exchange']}-{m['market']}"
        return FileName(symbol, m["tf"], exchange)
    m = _FREQTRADE.match(stem)
    if m:
        symbol = f"{m['base']}/{m['quote']}"
        if m["settle"] or m["kind"] == "futures":
            symbol += f":{m['settle'] or m['quote']}"
        return FileName(symbol, m["tf"])
    return None
