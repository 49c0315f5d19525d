"""``load_candles``: one entry point for candle files, store files and frames.

See docs/marketsim/data.md, section "Readers".
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from marketsim.data.clean import clean_candles
from marketsim.data.readers import frame_to_candles, read_csv_candles, read_json_candles
from marketsim.data.schema import COLUMNS, FLAG_COLUMNS, DataError
from marketsim.data.store import read_parquet_frame
from marketsim.data.timeframe import infer_timeframe


def read_candles(source: str | Path | pd.DataFrame) -> pd.DataFrame:
    """Read candles from a path or frame into the schema, without sorting or cleaning.

    Paths ending in ``.parquet`` are store files, ``.json``/``.json.gz`` ccxt arrays, anything
    else CSV (optionally ``.gz``).
    """
    if isinstance(source, pd.DataFrame):
        return frame_to_candles(source, "<DataFrame>")
    if not isinstance(source, (str, Path)):
        raise TypeError(f"source must be a path or a DataFrame, got {type(source).__name__}")
    p = Path(source)
    name = p.name.lower()
    if name.endswith(".parquet"):
        df = read_parquet_frame(p)
        missing = [c for c in COLUMNS if c not in df.columns]
        if missing:
            raise DataError(
                f"missing; expected candle columns {list(COLUMNS)}, found {list(df.columns)}",
                file=str(p),
                column=missing[0],
            )
        keep = [c for c in (*COLUMNS, *FLAG_COLUMNS) if c in df.columns]
        return frame_to_candles(df[keep], str(p))
    if name.endswith((".json", ".json.gz")):
        return read_json_candles(p)
    return read_csv_candles(p)


def load_candles(
    source: str | Path | pd.DataFrame, timeframe: str | None = None, clean: bool = True
) -> pd.DataFrame:
    """Load candles in the schema; with ``clean`` (default) return the cleaned frame.

    ``timeframe`` is inferred from the most common step when None. The cleaning report is
    available from :func:`marketsim.data.clean_candles`.
    """
    df = read_candles(source)
    if not clean:
        return df
    tf = timeframe or infer_timeframe(df.index)
    cleaned, _ = clean_candles(df, tf)
    return cleaned
