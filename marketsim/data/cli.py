"""The ``data`` click group: fetch, import, clean, info, synth.

Mounted by the top-level ``cli.py`` with ``cli.add_command(data)``; every command that writes a
file prints its path as the last line. See docs/marketsim/data.md, section "Command line".
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import click
import pandas as pd

from marketsim.data.clean import CleaningThresholds, clean_candles
from marketsim.data.load import read_candles
from marketsim.data.names import parse_file_name
from marketsim.data.report import CleaningReport
from marketsim.data.schema import DataError
from marketsim.data.store import (
    DataStore,
    atomic_write_bytes,
    content_hash,
    frame_to_parquet_bytes,
)
from marketsim.data.timeframe import infer_timeframe

_STORE_HELP = "store root (default: $MARKETSIM_STORE or ./data_store)"
_MAX_GAP = CleaningThresholds().max_gap_bars
_MAX_GAP_HELP = ("refuse a gap of more missing bars than this instead of filling it with "
                 "invented bars (a timestamp with a digit missing makes a gap of decades)")


def _store(root: str | None) -> DataStore:
    """The store at ``root`` or the default root."""
    return DataStore(root)


@click.group(name="data", context_settings={"help_option_names": ["-h", "--help"],
                                             "max_content_width": 100, "show_default": True})
def data() -> None:
    """Market data: download, import, clean, inspect and synthesise candles."""


@data.command("fetch", short_help="Download candles, funding or order books with ccxt.")
@click.option("--exchange", "exchanges", multiple=True, default=("binance",), show_default=True,
              help="ccxt exchange id; repeat for several")
@click.option("--symbol", "symbols", multiple=True, required=True, help="e.g. ETH/USDT")
@click.option("--timeframe", default="1m", show_default=True, help="bar length (ohlcv)")
@click.option("--since", default=None, help="UTC start, e.g. 2025-03-01 (default: store end)")
@click.option("--until", default=None, help="UTC end, exclusive (default: now)")
@click.option(
    "--kind",
    type=click.Choice(["ohlcv", "funding", "orderbook"]),
    default="ohlcv",
    show_default=True,
    help="candles, funding rates, or order-book snapshots",
)
@click.option("--max-tries", default=5, show_default=True, help="tries per request")
@click.option("--store", "store_root", default=None, help=_STORE_HELP)
def fetch(exchanges, symbols, timeframe, since, until, kind, max_tries, store_root) -> None:
    """Download from exchanges with ccxt (all symbols x exchanges concurrently) into the store."""
    from marketsim.data.ccxt_loader import FetchJob, RetryPolicy, fetch_many

    jobs = [
        FetchJob(
            exchange=ex,
            symbol=sym,
            timeframe=timeframe,
            since=pd.Timestamp(since) if since else None,
            until=pd.Timestamp(until) if until else None,
            kind=kind,
        )
        for ex in exchanges
        for sym in symbols
    ]
    store = _store(store_root)
    results = asyncio.run(fetch_many(jobs, store, RetryPolicy(max_tries=max_tries)))
    failed = [r for r in results if r.error]
    for r in results:
        status = f"error: {r.error}" if r.error else f"{r.rows_fetched} rows, {r.pages} pages"
        click.echo(f"{r.job.exchange} {r.job.symbol} {r.job.kind}: {status}", err=True)
    paths = [r.path for r in results if r.path]
    for p in paths:
        click.echo(p)
    if failed:
        sys.exit(1)


@data.command("import", short_help="Clean a candle file and write it to the store.")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--exchange", default=None,
              help="store folder of the exchange (default: from the file name, else 'local')")
@click.option("--symbol", default=None,
              help="e.g. ETH/USDT (default: from a standard file name such as "
                   "binance-spot_ETHUSDT_1h_20170817_20230303.csv.gz or ETH_USDT-1h.json)")
@click.option("--timeframe", default=None,
              help="default: from the file name, else inferred from the bars")
@click.option("--store", "store_root", default=None, help=_STORE_HELP)
@click.option("--max-gap-bars", type=click.IntRange(min=0), default=_MAX_GAP,
              help=_MAX_GAP_HELP)
def import_(file, exchange, symbol, timeframe, store_root, max_gap_bars) -> None:
    """Read FILE (CSV, CSV.gz, Parquet, ccxt JSON), clean it and write it to the store."""
    named = parse_file_name(file)
    symbol = symbol or (named.symbol if named else None)
    if symbol is None:
        raise click.UsageError(
            f"--symbol is needed: the name {Path(file).name!r} is not a standard one "
            "(<exchange>-spot_<SYMBOL>_<timeframe>_<start>_<end>.csv.gz or "
            "<BASE>_<QUOTE>-<timeframe>.json)")
    exchange = exchange or (named.exchange if named and named.exchange else "local")
    try:
        raw = read_candles(file)
        tf = timeframe or infer_timeframe(raw.index)
        if timeframe is None and named is not None and named.timeframe != tf:
            raise click.ClickException(
                f"{Path(file).name}: the name says {named.timeframe} bars but the bars are "
                f"{tf} apart; pass --timeframe to choose")
        cleaned, report = clean_candles(raw, tf, max_gap_bars=max_gap_bars)
    except DataError as exc:  # the store is not touched
        raise click.ClickException(str(exc.located(file))) from None
    try:
        path = _store(store_root).write(cleaned, exchange, symbol, tf, f"file:{file}", report)
    except (OSError, ValueError) as exc:
        raise click.ClickException(f"cannot write to the store: {exc}") from None
    click.echo(report.summary(), err=True)
    click.echo(str(path))


@data.command("clean", short_help="Clean a candle file into a Parquet file; print the report.")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--timeframe", default=None, help="default: inferred from the file")
@click.option("--out", default=None,
              help="output Parquet (default: runs/data/<file name>.clean.parquet)")
@click.option("--report", "report_path", default=None, help="also write the report as JSON")
@click.option("--max-gap-bars", type=click.IntRange(min=0), default=_MAX_GAP,
              help=_MAX_GAP_HELP)
def clean(file, timeframe, out, report_path, max_gap_bars) -> None:
    """Clean FILE into a Parquet file and print the cleaning report."""
    try:
        raw = read_candles(file)
        tf = timeframe or infer_timeframe(raw.index)
        cleaned, report = clean_candles(raw, tf, max_gap_bars=max_gap_bars)
    except DataError as exc:
        raise click.ClickException(str(exc.located(file))) from None
    name = Path(file).name.split(".")[0]
    target = Path(out) if out else Path("runs") / "data" / f"{name}.clean.parquet"
    atomic_write_bytes(target, frame_to_parquet_bytes(cleaned))
    if report_path:
        atomic_write_bytes(Path(report_path), json.dumps(report.to_dict(), indent=2).encode())
    click.echo(report.summary(), err=True)
    click.echo(str(target))


@data.command("info", short_help="Range, rows, gaps, repairs and hash of a file or dataset.")
@click.argument("target", required=False)
@click.option("--exchange", default=None, help="with --symbol and --timeframe: a store dataset")
@click.option("--symbol", default=None, help="e.g. ETH/USDT (with --exchange, --timeframe)")
@click.option("--timeframe", default=None,
              help="e.g. 1h: the dataset's timeframe, or a file's (default: inferred)")
@click.option("--store", "store_root", default=None, help=_STORE_HELP)
def info(target, exchange, symbol, timeframe, store_root) -> None:
    """Range, rows, gaps, repairs and hash of a file, or of a store dataset, or list the store.

    TARGET is a candle file; without it, --exchange, --symbol and --timeframe name a store
    dataset, and with none of them the store's datasets are listed."""
    store = _store(store_root)
    if target is None and exchange and symbol and timeframe:
        target = str(store.path(exchange, symbol, timeframe))
    elif target is None:
        for ex, sym, ds in store.datasets():
            click.echo(f"{ex} {sym} {ds}")
        return
    sidecar = Path(target).with_suffix(".json") if target.endswith(".parquet") else None
    try:
        meta = json.loads(sidecar.read_text()) if sidecar is not None and sidecar.exists() else None
    except (OSError, ValueError) as exc:
        raise click.ClickException(f"file {sidecar}: unreadable sidecar ({exc})") from None
    try:
        raw = read_candles(target)
        tf = timeframe or infer_timeframe(raw.index)
        if meta is not None and meta.get("cleaning"):
            report = CleaningReport.from_dict(meta["cleaning"])
        else:
            _, report = clean_candles(raw, tf, max_gap_bars=None)  # inspection: never refuses
    except DataError as exc:
        raise click.ClickException(str(exc.located(target))) from None
    click.echo(f"file: {target}")
    click.echo(f"range: {raw.index.min().isoformat()} .. {raw.index.max().isoformat()}")
    click.echo(f"rows: {len(raw)}")
    click.echo(f"hash: {content_hash(raw)}")
    if meta is not None:
        click.echo(f"source: {meta.get('source')}; stored hash: {meta.get('content_hash')}")
        click.echo("cleaning report (stored at import/fetch):")
    else:
        click.echo("cleaning report (what clean would change):")
    click.echo(report.summary())


@data.command("synth", short_help="Generate synthetic candles (GBM, Merton jumps, regimes).")
@click.option(
    "--model",
    type=click.Choice(["default", "gbm", "merton", "regime"]),
    default="default",
    show_default=True,
    help="default: calibrated to ETHUSDT; gbm; merton (GBM plus jumps); regime (switching)",
)
@click.option("--n-bars", default=20_000, show_default=True, help="number of candles")
@click.option("--seed", default=0, show_default=True, help="random seed")
@click.option("--timeframe", default="1m", show_default=True, help="bar length")
@click.option("--sigma", default=0.001, show_default=True, help="per-bar vol (gbm, merton)")
@click.option("--jump-rate", default=0.001, show_default=True, help="jumps per bar (merton)")
@click.option("--jump-mean", default=0.0, show_default=True, help="mean log jump (merton)")
@click.option("--jump-std", default=0.01, show_default=True, help="std of log jump (merton)")
@click.option("--out", default=None,
              help="output Parquet (default: the store's synthetic/<model>-seed<seed>/<timeframe>)")
@click.option("--store", "store_root", default=None, help=_STORE_HELP)
def synth(model, n_bars, seed, timeframe, sigma, jump_rate, jump_mean, jump_std, out,
          store_root) -> None:
    """Generate synthetic candles and write them as Parquet (into the store by default)."""
    from marketsim import synthetic

    if model == "default":
        df = synthetic.default_candles(n_bars, seed, timeframe)
    elif model == "gbm":
        df = synthetic.gbm(n_bars, sigma=sigma, seed=seed, timeframe=timeframe)
    elif model == "merton":
        df = synthetic.merton(
            n_bars,
            sigma=sigma,
            jump_rate=jump_rate,
            jump_mean=jump_mean,
            jump_std=jump_std,
            seed=seed,
            timeframe=timeframe,
        )
    else:
        df = synthetic.regime_switching(n_bars, seed=seed, timeframe=timeframe)
    if out:
        target = Path(out)
        atomic_write_bytes(target, frame_to_parquet_bytes(df))
    else:
        params = {"model": model, "n_bars": n_bars, "seed": seed, "sigma": sigma,
                  "jump_rate": jump_rate, "jump_mean": jump_mean, "jump_std": jump_std}
        target = _store(store_root).write(df, "synthetic", f"{model}-seed{seed}", timeframe,
                                          f"synthetic:{model}", extra={"synthetic": params})
    click.echo(str(target))
