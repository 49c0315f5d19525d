"""The candle schema and the errors raised for bad input.

A candle frame is indexed by a tz-aware UTC ``DatetimeIndex`` named ``timestamp`` (candle open
time) with float64 columns ``open, high, low, close, volume`` and optional bool columns
``filled`` and ``repaired``. See docs/marketsim/data.md, section "The candle schema".
"""

from __future__ import annotations

import numpy as np
import pandas as pd

PRICE_COLUMNS: tuple[str, ...] = ("open", "high", "low", "close")
COLUMNS: tuple[str, ...] = (*PRICE_COLUMNS, "volume")
FLAG_COLUMNS: tuple[str, ...] = ("filled", "repaired")
INDEX_NAME = "timestamp"


class DataError(ValueError):
    """Bad market data; the message names the file, row and/or column and what was expected."""

    def __init__(
        self,
        message: str,
        file: str | None = None,
        row: int | None = None,
        column: str | None = None,
    ) -> None:
        self.file, self.row, self.column = file, row, column
        self.message = message
        where = []
        if file is not None:
            where.append(f"file {file}")
        if row is not None:
            where.append(f"row {row}")
        if column is not None:
            where.append(f"column {column!r}")
        super().__init__(f"{', '.join(where)}: {message}" if where else message)

    def located(self, file: str | None = None, row: int | None = None) -> DataError:
        """The same error with the file (and row) filled in where it had none."""
        return type(self)(self.message, file=self.file or file,
                          row=self.row if self.row is not None else row, column=self.column)


def validate_candles(df: pd.DataFrame, source: str = "<DataFrame>") -> None:
    """Raise :class:`DataError` unless ``df`` has the candle schema (ordering is not checked)."""
    if not isinstance(df, pd.DataFrame):
        raise DataError(f"expected a pandas DataFrame, got {type(df).__name__}", file=source)
    index = df.index
    if not isinstance(index, pd.DatetimeIndex):
        raise DataError(
            f"expected a DatetimeIndex named 'timestamp', got {type(index).__name__}", file=source
        )
    if index.tz is None or str(index.tz) != "UTC":
        raise DataError(f"expected a UTC index, got tz={index.tz}", file=source)
    for col in COLUMNS:
        if col not in df.columns:
            raise DataError(
                f"missing; expected columns {list(COLUMNS)}, found {list(df.columns)}",
                file=source,
                column=col,
            )
        if df[col].dtype != np.float64:
            raise DataError(f"expected float64, got {df[col].dtype}", file=source, column=col)
    for col in FLAG_COLUMNS:
        if col in df.columns and df[col].dtype != bool:
            raise DataError(f"expected bool, got {df[col].dtype}", file=source, column=col)


def empty_candles() -> pd.DataFrame:
    """An empty frame with the candle schema."""
    index = pd.DatetimeIndex([], tz="UTC", name=INDEX_NAME).as_unit("ns")
    return pd.DataFrame({c: np.array([], dtype=np.float64) for c in COLUMNS}, index=index)
