"""``data import`` of bad files (issue 14): each case is a clear error naming the file, row and
column, never a traceback, and the store is left exactly as it was. A dataset and its sidecar
change together, also when two imports race and when a write is cut between its steps."""

from __future__ import annotations

import gzip
import json
import threading

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from data_helpers import make_candles

from marketsim.data import DataStore
from marketsim.data.clean import clean_candles
from marketsim.data.cli import data
from marketsim.data.load import read_candles
from marketsim.data.schema import DataError

N = 200


def _csv_lines(n: int = N) -> list[str]:
    """Headerless ccxt-order CSV lines (ms timestamps) of ``n`` one-minute bars."""
    df = make_candles(np.linspace(100, 110, n), start="2023-03-16")
    ms = df.index.as_unit("ms").asi8
    return [f"{t},{o},{h},{lo},{c},{v}" for t, (o, h, lo, c, v)
            in zip(ms, df[["open", "high", "low", "close", "volume"]].to_numpy())]


@pytest.fixture
def store(tmp_path):
    """A store that already holds a good ETH/USDT 1m dataset; returns (root, snapshot)."""
    root = tmp_path / "store"
    good = tmp_path / "good.csv"
    good.write_text("\n".join(_csv_lines()) + "\n")
    res = CliRunner().invoke(data, ["import", str(good), "--symbol", "ETH/USDT",
                                    "--exchange", "local", "--store", str(root)])
    assert res.exit_code == 0, res.output
    folder = root / "local" / "ETH-USDT"
    snap = {p.name: p.read_bytes() for p in folder.iterdir()}
    return root, folder, snap


def _import(root, path, *extra):
    return CliRunner().invoke(data, ["import", str(path), "--symbol", "ETH/USDT", "--exchange",
                                     "local", "--store", str(root), *extra])


def _refused(res, store, *words):
    root, folder, snap = store
    assert res.exit_code == 1, res.output
    assert isinstance(res.exception, SystemExit) and "Traceback" not in res.output
    for w in words:
        assert w in res.output, (w, res.output)
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == snap  # store unchanged
    DataStore(root).read("local", "ETH/USDT", "1m", verify=True)


def test_a_timestamp_cut_to_8_digits_is_refused_not_filled(tmp_path, store):
    lines = _csv_lines()
    t, rest = lines[150].split(",", 1)
    lines[150] = f"{t[:8]},{rest}"  # 1678960800000 -> 16789608: a time in 1970
    bad = tmp_path / "cut.csv"
    bad.write_text("\n".join(lines) + "\n")
    res = _import(store[0], bad, "--timeframe", "1m")
    _refused(res, store, str(bad), "bars missing between row 151 (1970-", "max_gap_bars",
             "--max-gap-bars")
    # and without --timeframe the inferred one is the same: still refused
    _refused(_import(store[0], bad), store, "row 151")


def test_max_gap_bars_is_configurable(tmp_path, store):
    lines = _csv_lines()
    del lines[50:60]  # a 10-bar gap
    f = tmp_path / "gap.csv"
    f.write_text("\n".join(lines) + "\n")
    _refused(_import(store[0], f, "--max-gap-bars", "5"), store, "10 bars missing between "
             "row 50 (2023-03-16T00:49:00+00:00) and row 51 (2023-03-16T01:00:00+00:00)")
    res = _import(store[0], f, "--max-gap-bars", "10")
    assert res.exit_code == 0 and "filled rows: 10" in res.output


def test_an_epoch_beyond_the_clock_is_refused(tmp_path, store):
    lines = _csv_lines()
    lines[10] = "9.9e18," + lines[10].split(",", 1)[1]
    bad = tmp_path / "overflow.csv"
    bad.write_text("\n".join(lines) + "\n")
    _refused(_import(store[0], bad), store, str(bad), "row 11", "column 'timestamp'",
             "after tomorrow")


def test_a_truncated_last_line_is_refused(tmp_path, store):
    lines = _csv_lines()
    lines[-1] = lines[-1][: len(lines[-1]) // 2]
    bad = tmp_path / "torn.csv"
    bad.write_text("\n".join(lines))
    _refused(_import(store[0], bad), store, str(bad), f"row {N}", "cut short")


@pytest.mark.parametrize("rows,words", [
    (1, "from 1 row(s)"), ("same", "all timestamps are equal")])
def test_too_few_distinct_times_to_infer_a_timeframe(tmp_path, store, rows, words):
    lines = _csv_lines(3)
    if rows == 1:
        lines = lines[:1]
    else:
        t = lines[0].split(",")[0]
        lines = [t + "," + x.split(",", 1)[1] for x in lines]
    f = tmp_path / "few.csv"
    f.write_text("\n".join(lines) + "\n")
    _refused(_import(store[0], f), store, str(f), words, "--timeframe")


def test_json_that_is_not_a_list_of_arrays(tmp_path, store):
    f = tmp_path / "ETH_USDT-1m.json"
    f.write_text("[1, 2, 3]")
    _refused(_import(store[0], f), store, str(f), "row 1", "expected an array")


def test_json_rows_are_numbered_from_1_like_csv_rows(tmp_path, store):
    rows = [[int(x) if i == 0 else float(x) for i, x in enumerate(line.split(","))]
            for line in _csv_lines(5)]
    rows[2][2] = "abc"
    f = tmp_path / "bad.json"
    f.write_text(json.dumps(rows))
    _refused(_import(store[0], f), store, str(f), "row 3", "column 'high'")


def test_a_missing_json_file(tmp_path, store):
    _refused(_import(store[0], tmp_path / "nope.json"), store, "nope.json", "file not found")


def test_a_truncated_json_gz(tmp_path, store):
    rows = [[int(x.split(",")[0]), *map(float, x.split(",")[1:])] for x in _csv_lines()]
    blob = gzip.compress(json.dumps(rows).encode())
    f = tmp_path / "cut.json.gz"
    f.write_bytes(blob[: len(blob) // 2])
    res = _import(store[0], f)
    _refused(res, store, str(f), "cannot read", "truncated")
    assert "Aborted" not in res.output


def test_a_bad_timestamp_in_the_last_row_names_that_row(tmp_path, store):
    lines = _csv_lines()
    lines[-1] = "16789608x," + lines[-1].split(",", 1)[1]
    f = tmp_path / "last.csv"
    f.write_text("\n".join(lines) + "\n")
    _refused(_import(store[0], f), store, str(f), f"row {N}", "16789608x")


def test_all_prices_infinite_names_the_file(tmp_path, store):
    lines = [x.split(",")[0] + ",inf,inf,inf,inf,1" for x in _csv_lines(10)]
    f = tmp_path / "inf.csv"
    f.write_text("\n".join(lines) + "\n")
    _refused(_import(store[0], f), store, str(f), "no valid close price")


def test_a_good_import_still_replaces_the_dataset(tmp_path, store):
    root, folder, snap = store
    f = tmp_path / "more.csv"
    f.write_text("\n".join(_csv_lines(300)) + "\n")
    res = _import(root, f)
    assert res.exit_code == 0, res.output
    df = DataStore(root).read("local", "ETH/USDT", "1m", verify=True)
    assert len(df) == 300


def _import_frame(root, path):
    raw = read_candles(path)
    cleaned, report = clean_candles(raw, "1m")
    DataStore(root).write(cleaned, "local", "ETH/USDT", "1m", f"file:{path}", report)


def test_two_imports_at_the_same_instant_leave_one_consistent_pair(tmp_path, store):
    root = store[0]
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    a.write_text("\n".join(_csv_lines(300)) + "\n")
    b.write_text("\n".join(_csv_lines(250)) + "\n")
    for _ in range(12):
        barrier = threading.Barrier(2)
        errors = []

        def run(p, barrier=barrier, errors=errors):
            barrier.wait()
            try:
                _import_frame(root, p)
            except Exception as e:  # pragma: no cover - reported below
                errors.append(e)

        threads = [threading.Thread(target=run, args=(p,)) for p in (a, b)]
        [t.start() for t in threads]
        [t.join() for t in threads]
        assert not errors
        df = DataStore(root).read("local", "ETH/USDT", "1m", verify=True)
        meta = DataStore(root).read_meta("local", "ETH/USDT", "1m")
        assert len(df) == meta["rows"] and meta["source"] in (f"file:{a}", f"file:{b}")


def test_a_write_cut_between_its_steps_is_finished_or_undone(tmp_path):
    st = DataStore(tmp_path)
    old = make_candles(np.linspace(1, 2, 50))
    new = make_candles(np.linspace(1, 3, 80))
    st.write(old, "x", "ETH/USDT", "1m", "old")
    p = st.path("x", "ETH/USDT", "1m")
    from marketsim.data.store import frame_to_parquet_bytes

    # killed after writing the new Parquet, before the sidecar: undone
    p.with_name(p.name + ".new").write_bytes(frame_to_parquet_bytes(new))
    assert len(st.read("x", "ETH/USDT", "1m", verify=True)) == 50
    assert not p.with_name(p.name + ".new").exists()
    # killed after the sidecar (the commit point), before the rename: finished
    st.write(new, "x", "ETH/USDT", "1m", "new")  # to get the sidecar of `new`
    sidecar = p.with_suffix(".json").read_bytes()
    st.write(old, "x", "ETH/USDT", "1m", "old")
    p.with_name(p.name + ".new").write_bytes(frame_to_parquet_bytes(new))
    p.with_suffix(".json").write_bytes(sidecar)
    assert len(st.read("x", "ETH/USDT", "1m", verify=True)) == 80


def test_the_reader_functions_raise_data_errors_only(tmp_path):
    f = tmp_path / "x.json"
    f.write_text('{"a": 1}')
    with pytest.raises(DataError, match="expected a JSON list"):
        read_candles(f)
    g = tmp_path / "y.json"
    g.write_text("[[1, 2]]")
    with pytest.raises(DataError, match="row 1"):
        read_candles(g)
    assert isinstance(pd.Timestamp.now(), pd.Timestamp)
