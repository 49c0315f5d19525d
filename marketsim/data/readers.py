"""Readers for candle files: Binance kline CSV, the shared-data CSV, generic CSV, ccxt arrays.

Every reader returns the candle schema (:mod:`marketsim.data.schema`), unsorted and uncleaned,
and raises :class:`~marketsim.data.schema.DataError` naming the file, row and column of bad
input. Rows are numbered as lines of the file (the header is line 1). See docs/marketsim/data.md,
section "Readers".
"""

from __future__ import annotations

import gzip
import io
import json
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from marketsim.data.schema import COLUMNS, FLAG_COLUMNS, INDEX_NAME, DataError

# Binance public kline CSV columns (data.binance.vision), headerless in older files.
BINANCE_KLINE_COLUMNS: tuple[str, ...] = (
    "open_time",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "close_time",
    "quote_volume",
    "count",
    "taker_buy_volume",
    "taker_buy_quote_volume",
    "ignore",
)
CCXT_COLUMNS: tuple[str, ...] = ("timestamp", *COLUMNS)
# Accepted names of the time column in generic CSVs, in order of preference (lower case).
TIME_COLUMNS: tuple[str, ...] = (
    "open_time_ms",
    "timestamp",
    "open_time",
    "time",
    "datetime",
    "date",
    "ts",
)
_TZ_SUFFIX = r"(?:Z|[+-]\d\d:?\d\d)$"


# --8<-- [start:epoch-to-utc]
def epoch_to_utc(
    values: np.ndarray, file: str, column: str, first_row: int = 2
) -> pd.DatetimeIndex:
    """Convert epoch numbers to UTC, choosing the unit per value by magnitude.

    Seconds below 1e11, milliseconds below 1e14, microseconds below 1e17, else nanoseconds
    (Binance spot files switched from ms to us in 2025, so one file may hold both).
    """
    v = np.asarray(values, dtype=np.float64)
    bad = ~np.isfinite(v) | (v < 0)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"expected a non-negative epoch time, got {values[i]!r}",
            file=file,
            row=first_row + i,
            column=column,
        )
    scale = np.where(v < 1e11, 1e9, np.where(v < 1e14, 1e6, np.where(v < 1e17, 1e3, 1.0)))
    ns_float = v * scale
    late = ns_float > latest_plausible_ns()  # also catches what int64 nanoseconds cannot hold
    if late.any():
        i = int(np.flatnonzero(late)[0])
        raise DataError(
            f"epoch time {values[i]!r} is after {_LATEST_TEXT}; expected a time in the past "
            "(a timestamp with extra digits?)",
            file=file,
            row=first_row + i,
            column=column,
        )
    ns = np.round(ns_float).astype(np.int64)
    return pd.DatetimeIndex(pd.to_datetime(ns, unit="ns", utc=True), name=INDEX_NAME)
# --8<-- [end:epoch-to-utc]


_LATEST_TEXT = "tomorrow (UTC)"


def latest_plausible_ns() -> float:
    """Nanoseconds since the epoch of the latest plausible candle time in a file: one day
    from now. A later time is a typo or an overflow (9.9e18 would wrap around to 2262)."""
    return float(pd.Timestamp.now(tz="UTC").value) + 86_400e9


def text_to_utc(values: pd.Series, file: str, column: str, first_row: int = 2) -> pd.DatetimeIndex:
    """Parse ISO-like time strings to UTC; naive strings are UTC, offsets are converted.

    A column that mixes strings with and without a UTC offset is ambiguous and raises.
    """
    s = values.astype(str).str.strip()
    aware = s.str.contains(_TZ_SUFFIX, regex=True).to_numpy()
    if aware.any() and not aware.all():
        i_naive = int(np.flatnonzero(~aware)[0])
        i_aware = int(np.flatnonzero(aware)[0])
        raise DataError(
            "mixed time zones: row "
            f"{first_row + i_aware} has a UTC offset ({s.iloc[i_aware]!r}) but row "
            f"{first_row + i_naive} has none ({s.iloc[i_naive]!r}); expected all times in one "
            "convention (all with offsets, or all naive UTC)",
            file=file,
            column=column,
        )
    try:
        parsed = pd.to_datetime(s, utc=True, format="ISO8601")
    except (ValueError, TypeError, OverflowError):
        parsed = pd.to_datetime(s, utc=True, errors="coerce", format="mixed")
        bad = parsed.isna().to_numpy()
        i = int(np.flatnonzero(bad)[0]) if bad.any() else 0
        raise DataError(
            f"expected a date-time, got {s.iloc[i]!r}", file=file, row=first_row + i, column=column
        ) from None
    late = pd.DatetimeIndex(parsed).as_unit("ns").asi8 > latest_plausible_ns()
    if late.any():
        i = int(np.flatnonzero(late)[0])
        raise DataError(f"{s.iloc[i]!r} is after {_LATEST_TEXT}; expected a time in the past",
                        file=file, row=first_row + i, column=column)
    return pd.DatetimeIndex(parsed, name=INDEX_NAME)


def _to_float(col: pd.Series, file: str, name: str, first_row: int) -> np.ndarray:
    """Convert one column to float64; a non-numeric cell raises naming its row and column."""
    if pd.api.types.is_numeric_dtype(col.dtype) and not pd.api.types.is_bool_dtype(col.dtype):
        return col.to_numpy(np.float64)
    numeric = pd.to_numeric(col, errors="coerce")
    bad = (numeric.isna() & col.notna()).to_numpy()
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"expected a number, got {col.iloc[i]!r}", file=file, row=first_row + i, column=name
        )
    return numeric.to_numpy(np.float64)


def frame_to_candles(
    raw: pd.DataFrame, file: str = "<DataFrame>", first_row: int = 2
) -> pd.DataFrame:
    """Convert a frame with a time column (or a DatetimeIndex) and OHLCV columns to the schema.

    Column names are matched case-insensitively; the time column is the first of
    :data:`TIME_COLUMNS` present, or the index when it is a ``DatetimeIndex``. A naive index is
    taken as UTC; an aware one is converted.
    """
    lower = {str(c).strip().lower(): c for c in raw.columns}
    missing = [c for c in COLUMNS if c not in lower]
    if missing:
        raise DataError(
            f"missing; expected columns {list(COLUMNS)} and a time column, "
            f"found {[str(c) for c in raw.columns]}",
            file=file,
            column=missing[0],
        )
    if isinstance(raw.index, pd.DatetimeIndex):
        index = raw.index
        index = index.tz_localize("UTC") if index.tz is None else index.tz_convert("UTC")
        index = pd.DatetimeIndex(index, name=INDEX_NAME)
    else:
        time_name = next((lower[c] for c in TIME_COLUMNS if c in lower), None)
        if time_name is None:
            raise DataError(
                f"no time column; expected one of {list(TIME_COLUMNS)}, "
                f"found {[str(c) for c in raw.columns]}",
                file=file,
            )
        col = raw[time_name]
        if pd.api.types.is_datetime64_any_dtype(col.dtype):
            index = pd.DatetimeIndex(col, name=INDEX_NAME)
            index = index.tz_localize("UTC") if index.tz is None else index.tz_convert("UTC")
        elif pd.api.types.is_numeric_dtype(col.dtype):
            index = epoch_to_utc(col.to_numpy(), file, str(time_name), first_row)
        elif _mostly_numbers(col):  # epoch numbers with a bad cell: name that cell, not row 1
            numeric = pd.to_numeric(col, errors="coerce")
            bad = (numeric.isna() | col.isna()).to_numpy()
            i = int(np.flatnonzero(bad)[0])
            raise DataError(f"expected an epoch time, got {col.iloc[i]!r}", file=file,
                            row=first_row + i, column=str(time_name))
        else:
            if col.isna().any():
                i = int(np.flatnonzero(col.isna().to_numpy())[0])
                raise DataError(
                    "expected a time, got an empty cell",
                    file=file,
                    row=first_row + i,
                    column=str(time_name),
                )
            index = text_to_utc(col, file, str(time_name), first_row)
    data = {c: _to_float(raw[lower[c]], file, c, first_row) for c in COLUMNS}
    out = pd.DataFrame(data, index=index.as_unit("ns"))
    for flag in FLAG_COLUMNS:
        if flag in lower:
            out[flag] = raw[lower[flag]].to_numpy().astype(bool)
    return out


def _mostly_numbers(col: pd.Series) -> bool:
    """True when most cells of a text column are numbers (an epoch column with bad cells)."""
    numeric = pd.to_numeric(col, errors="coerce")
    return bool(numeric.notna().mean() > 0.5)


def _last_line(path: Path) -> str:
    """The last non-empty line of a (possibly gzipped) text file."""
    opener = gzip.open if path.name.endswith(".gz") else open
    last = ""
    with opener(path, "rt", encoding="utf-8", errors="replace") as fh:
        for line in fh:
            if line.strip():
                last = line.strip()
    return last


def _first_line(path: Path) -> str:
    """The first non-empty line of a (possibly gzipped) text file, or '' when empty."""
    opener = gzip.open if path.name.endswith(".gz") else open
    try:
        with opener(path, "rt", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.strip():
                    return line.strip()
    except (OSError, EOFError) as exc:
        raise DataError(f"cannot read: {exc}", file=str(path)) from exc
    return ""


def _is_number(text: str) -> bool:
    """True when ``text`` parses as a float."""
    try:
        float(text)
    except ValueError:
        return False
    return True


def read_csv_candles(path: str | Path) -> pd.DataFrame:
    """Read a candle CSV (optionally gzipped): Binance kline, shared-data or generic format.

    * headerless with 12 columns: Binance kline CSV (:data:`BINANCE_KLINE_COLUMNS`);
    * headerless with 6 columns: ccxt order ``timestamp, open, high, low, close, volume``;
    * with a header: named columns (the shared data's ``open_time_ms, open_time_utc, ...``,
      Binance's headed files, or any CSV with a time column and OHLCV columns).
    Epoch times may be in s, ms or us (see :func:`epoch_to_utc`).
    """
    p = Path(path)
    name = str(p)
    if not p.exists():
        raise DataError("file not found", file=name)
    first = _first_line(p)
    if not first:
        raise DataError("empty file; expected candle rows", file=name)
    fields = [f.strip() for f in first.split(",")]
    headerless = _is_number(fields[0])
    try:
        if headerless:
            if len(fields) == len(BINANCE_KLINE_COLUMNS):
                names = list(BINANCE_KLINE_COLUMNS)
            elif len(fields) == len(CCXT_COLUMNS):
                names = list(CCXT_COLUMNS)
            else:
                raise DataError(
                    f"headerless CSV with {len(fields)} columns; expected 12 (Binance kline) "
                    "or 6 (timestamp, open, high, low, close, volume)",
                    file=name,
                    row=1,
                )
            raw = pd.read_csv(p, header=None, names=names, usecols=range(6))
            first_row = 1
        else:
            raw = pd.read_csv(p)
            first_row = 2
    except pd.errors.EmptyDataError as exc:
        raise DataError("empty file; expected candle rows", file=name) from exc
    except pd.errors.ParserError as exc:
        raise DataError(f"malformed CSV: {exc}", file=name) from exc
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read: {exc}", file=name) from exc
    if raw.empty:
        raise DataError("no data rows; expected candle rows after the header", file=name)
    n_fields = len(fields) if headerless else len(raw.columns)
    try:
        last = _last_line(p)
    except (OSError, EOFError) as exc:
        raise DataError(f"cannot read: {exc}", file=name) from exc
    if len(last.split(",")) < n_fields:  # a download cut short: pandas would pad it with NaN
        raise DataError(
            f"the last line has {len(last.split(','))} fields, expected {n_fields}: the file "
            f"looks cut short ({last[:80]!r})",
            file=name,
            row=first_row + len(raw) - 1,
        )
    out = frame_to_candles(raw, name, first_row)
    out.attrs.update(source=name, first_row=first_row)
    return out


def from_ccxt_ohlcv(rows: Sequence[Sequence[float]], source: str = "<ccxt>") -> pd.DataFrame:
    """Candles from ccxt-style ``[[timestamp_ms, open, high, low, close, volume], ...]``.

    Rows are numbered from 1 (the first array), as CSV data rows are numbered from their line.
    """
    if len(rows) == 0:
        raise DataError("no candles; expected [[ts, o, h, l, c, v], ...]", file=source)
    for i, row in enumerate(rows):
        if not isinstance(row, (list, tuple)):
            raise DataError(
                f"expected an array [ts, o, h, l, c, v], got {str(row)[:60]!r}",
                file=source,
                row=i + 1,
            )
        if len(row) != 6:
            raise DataError(
                f"expected 6 fields [ts, o, h, l, c, v], got {len(row)}", file=source, row=i + 1
            )
    raw = pd.DataFrame(list(rows), columns=list(CCXT_COLUMNS))
    out = frame_to_candles(raw, source, first_row=1)
    out.attrs.update(source=source, first_row=1)
    return out


def read_json_candles(path: str | Path) -> pd.DataFrame:
    """Read a JSON file holding a ccxt-style list of ``[ts, o, h, l, c, v]`` arrays."""
    p = Path(path)
    if not p.is_file():
        raise DataError("file not found", file=str(p))
    try:
        text = p.read_bytes()
        if p.name.endswith(".gz"):
            text = gzip.decompress(text)
    except (OSError, EOFError, zlib.error) as exc:  # a truncated or damaged .gz ends in EOFError
        raise DataError(f"cannot read: {type(exc).__name__}: {exc} (a truncated download?)",
                        file=str(p)) from None
    if not text.strip():
        raise DataError("empty file; expected a JSON list of [ts, o, h, l, c, v]", file=str(p))
    try:
        rows = json.load(io.BytesIO(text))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise DataError(f"invalid JSON: {exc}", file=str(p)) from None
    if not isinstance(rows, list):
        raise DataError("expected a JSON list of [ts, o, h, l, c, v]", file=str(p))
    return from_ccxt_ohlcv(rows, source=str(p))
