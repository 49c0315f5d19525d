"""Readers: every supported format, and bad input named by file, row and column."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pandas as pd
import pytest

from marketsim.data import DataError, DataStore, load_candles, read_candles
from marketsim.data.readers import from_ccxt_ohlcv

T0_MS = 1_740_787_200_000  # 2025-03-01 00:00 UTC
ROWS = [
    # open time ms, o, h, l, c, v
    (T0_MS, 10.0, 11.0, 9.0, 10.5, 100.0),
    (T0_MS + 60_000, 10.5, 12.0, 10.0, 11.0, 200.0),
    (T0_MS + 120_000, 11.0, 11.5, 10.5, 11.2, 300.0),
]


def _expect_rows(df: pd.DataFrame) -> None:
    """The three ROWS, parsed exactly."""
    assert str(df.index.tz) == "UTC" and df.index.name == "timestamp"
    assert list(df.index) == [
        pd.Timestamp("2025-03-01 00:00", tz="UTC") + pd.Timedelta(minutes=i) for i in range(3)
    ]
    expected = np.array([r[1:] for r in ROWS])
    np.testing.assert_array_equal(
        df[["open", "high", "low", "close", "volume"]].to_numpy(), expected
    )
    assert all(df[c].dtype == np.float64 for c in ["open", "high", "low", "close", "volume"])


def _binance_line(r, unit=1):
    t = r[0] * unit
    return f"{t},{r[1]},{r[2]},{r[3]},{r[4]},{r[5]},{t + 59_999 * unit},1.0,5,0.5,0.5,0"


def test_shared_data_header_gz(tmp_path):
    p = tmp_path / "x.csv.gz"
    lines = ["open_time_ms,open_time_utc,open,high,low,close,volume"]
    for r in ROWS:
        utc = pd.Timestamp(r[0], unit="ms").strftime("%Y-%m-%d %H:%M:%S")
        lines.append(f"{r[0]},{utc},{r[1]},{r[2]},{r[3]},{r[4]},{r[5]}")
    p.write_bytes(gzip.compress("\n".join(lines).encode()))
    _expect_rows(read_candles(p))


@pytest.mark.parametrize("unit", [1, 1000], ids=["ms", "us"])
def test_binance_headerless(tmp_path, unit):
    p = tmp_path / "ETHUSDT-1m-2025-03.csv"
    p.write_text("\n".join(_binance_line(r, unit) for r in ROWS) + "\n")
    _expect_rows(read_candles(p))


def test_binance_with_header_and_mixed_ms_us(tmp_path):
    p = tmp_path / "k.csv"
    header = (
        "open_time,open,high,low,close,volume,close_time,quote_volume,count,"
        "taker_buy_volume,taker_buy_quote_volume,ignore"
    )
    body = [_binance_line(ROWS[0], 1), _binance_line(ROWS[1], 1000), _binance_line(ROWS[2], 1)]
    p.write_text(header + "\n" + "\n".join(body) + "\n")
    _expect_rows(read_candles(p))


def test_ccxt_headerless_csv_arrays_and_json(tmp_path):
    p = tmp_path / "c.csv"
    p.write_text("\n".join(",".join(str(x) for x in r) for r in ROWS))
    _expect_rows(read_candles(p))
    _expect_rows(from_ccxt_ohlcv([list(r) for r in ROWS]))
    j = tmp_path / "c.json"
    j.write_text(json.dumps([list(r) for r in ROWS]))
    _expect_rows(read_candles(j))


def test_generic_csv_iso_with_offsets_converted_to_utc(tmp_path):
    p = tmp_path / "g.csv"
    p.write_text(
        "Date,Open,High,Low,Close,Volume\n"
        "2025-03-01T01:00:00+01:00,10,11,9,10.5,100\n"
        "2025-03-01T00:01:00Z,10.5,12,10,11,200\n"
        "2025-02-28T19:02:00-05:00,11,11.5,10.5,11.2,300\n"
    )
    _expect_rows(read_candles(p))


def test_dataframe_naive_index_taken_as_utc():
    idx = pd.DatetimeIndex([pd.Timestamp(r[0], unit="ms") for r in ROWS])
    df = pd.DataFrame(
        [r[1:] for r in ROWS], index=idx, columns=["open", "high", "low", "close", "volume"]
    )
    _expect_rows(read_candles(df))


# ---- bad input ------------------------------------------------------------------------------


def _shared_csv(tmp_path, body: str, name="bad.csv"):
    p = tmp_path / name
    p.write_text("open_time_ms,open,high,low,close,volume\n" + body)
    return p


def test_missing_column_named(tmp_path):
    p = tmp_path / "m.csv"
    p.write_text("timestamp,open,high,low,close\n1740787200000,1,2,0.5,1.5\n")
    with pytest.raises(DataError) as e:
        load_candles(p)
    msg = str(e.value)
    assert str(p) in msg and "'volume'" in msg and "expected columns" in msg
    assert e.value.column == "volume"


def test_non_numeric_cell_names_row_and_column(tmp_path):
    p = _shared_csv(tmp_path, "1740787200000,1,2,0.5,1.5,10\n1740787260000,1,2,abc,1.5,10\n")
    with pytest.raises(DataError) as e:
        load_candles(p)
    assert e.value.row == 3 and e.value.column == "low"  # line 3 of the file (header is line 1)
    assert (
        "'abc'" in str(e.value) and "expected a number" in str(e.value) and str(p) in str(e.value)
    )


@pytest.mark.parametrize("content", ["", "\n\n", "open_time_ms,open,high,low,close,volume\n"])
def test_empty_file(tmp_path, content):
    p = tmp_path / "e.csv"
    p.write_text(content)
    with pytest.raises(DataError, match="empty file|no data rows") as e:
        load_candles(p)
    assert str(p) in str(e.value)


def test_empty_gz_file(tmp_path):
    p = tmp_path / "e.csv.gz"
    p.write_bytes(gzip.compress(b""))
    with pytest.raises(DataError, match="empty file"):
        load_candles(p)


def test_mixed_time_zones_named(tmp_path):
    p = tmp_path / "tz.csv"
    p.write_text(
        "time,open,high,low,close,volume\n"
        "2025-03-01 00:00:00+00:00,1,2,0.5,1.5,10\n"
        "2025-03-01 00:01:00,1,2,0.5,1.5,10\n"
    )
    with pytest.raises(DataError, match="mixed time zones") as e:
        load_candles(p)
    msg = str(e.value)
    assert "row 2" in msg and "row 3" in msg and "'time'" in msg and str(p) in msg


def test_truncated_parquet_named(tmp_path, shared_data):
    df = load_candles(shared_data / "binance-spot_ETHUSDT_5m_20200210_20200331.csv.gz")
    store = DataStore(tmp_path)
    path = store.write(df, "binance", "ETH/USDT", "5m", "test")
    data = path.read_bytes()
    bad = tmp_path / "truncated.parquet"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="not a complete Parquet file") as e:
        load_candles(bad)
    assert str(bad) in str(e.value)


def test_bad_epoch_and_bad_date_named(tmp_path):
    p = _shared_csv(tmp_path, "1740787200000,1,2,0.5,1.5,10\n-5,1,2,0.5,1.5,10\n")
    with pytest.raises(DataError, match="epoch") as e:
        load_candles(p)
    assert e.value.row == 3 and e.value.column == "open_time_ms"
    q = tmp_path / "d.csv"
    q.write_text(
        "date,open,high,low,close,volume\n2025-03-01,1,2,0.5,1.5,1\nnot-a-date,1,2,0.5,1.5,1\n"
    )
    with pytest.raises(DataError, match="date-time") as e:
        load_candles(q)
    assert e.value.row == 3


def test_headerless_wrong_width_and_missing_file(tmp_path):
    p = tmp_path / "w.csv"
    p.write_text("1740787200000,1,2,0.5\n")
    with pytest.raises(DataError, match="12 \\(Binance kline\\) or 6"):
        load_candles(p)
    with pytest.raises(DataError, match="file not found"):
        load_candles(tmp_path / "nope.csv")
    with pytest.raises(TypeError, match="path or a DataFrame"):
        load_candles(42)  # type: ignore[arg-type]
