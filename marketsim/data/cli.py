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

from marketsim.data.clean import clean_candles
from marketsim.data.load import read_candles
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


def _store(root: str | None) -> DataStore:
    """The store at ``root`` or the default root."""
    return DataStore(root)


@click.group(name="data")
def data() -> None:
    """Market data: download, import, clean, inspect and synthesise candles."""


@data.command("fetch")
@click.option("--exchange", "exchanges", multiple=True, default=("binance",), show_default=True)
@click.option("--symbol", "symbols", multiple=True, required=True, help="e.g. ETH/USDT")
@click.option("--timeframe", default="1m", show_default=True)
@click.option("--since", default=None, help="UTC start, e.g. 2025-03-01 (default: store end)")
@click.option("--until", default=None, help="UTC end, exclusive (default: now)")
@click.option(
    "--kind",
    type=click.Choice(["ohlcv", "funding", "orderbook"]),
    default="ohlcv",
    show_default=True,
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


@data.command("import")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--exchange", default="local", show_default=True)
@click.option("--symbol", required=True, help="e.g. ETH/USDT")
@click.option("--timeframe", default=None, help="default: inferred from the file")
@click.option("--store", "store_root", default=None, help=_STORE_HELP)
def import_(file, exchange, symbol, timeframe, store_root) -> None:
    """Read FILE (CSV, CSV.gz, Parquet, ccxt JSON), clean it and write it to the store."""
    try:
        raw = read_candles(file)
        tf = timeframe or infer_timeframe(raw.index)
        cleaned, report = clean_candles(raw, tf)
    except DataError as exc:
        raise click.ClickException(str(exc)) from exc
    path = _store(store_root).write(cleaned, exchange, symbol, tf, f"file:{file}", report)
    click.echo(report.summary(), err=True)
    click.echo(str(path))


@data.command("clean")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--timeframe", default=None, help="default: inferred from the file")
@click.option("--out", default=None, help="output Parquet (default: <file>.clean.parquet)")
@click.option("--report", "report_path", default=None, help="also write the report as JSON")
def clean(file, timeframe, out, report_path) -> None:
    """Clean FILE into a Parquet file and print the cleaning report."""
    try:
        raw = read_candles(file)
        tf = timeframe or infer_timeframe(raw.index)
        cleaned, report = clean_candles(raw, tf)
    except DataError as exc:
        raise click.ClickException(str(exc)) from exc
    name = Path(file).name.split(".")[0]
    target = Path(out) if out else Path(file).with_name(f"{name}.clean.parquet")
    atomic_write_bytes(target, frame_to_parquet_bytes(cleaned))
    if report_path:
        atomic_write_bytes(Path(report_path), json.dumps(report.to_dict(), indent=2).encode())
    click.echo(report.summary(), err=True)
    click.echo(str(target))


@data.command("info")
@click.argument("target", required=False)
@click.option("--exchange", default=None)
@click.option("--symbol", default=None)
@click.option("--timeframe", default=None)
@click.option("--store", "store_root", default=None, help=_STORE_HELP)
def info(target, exchange, symbol, timeframe, store_root) -> None:
    """Range, rows, gaps, repairs and hash of a file, or of a store dataset, or list the store."""
    store = _store(store_root)
    if target is None and exchange and symbol and timeframe:
        target = str(store.path(exchange, symbol, timeframe))
    elif target is None:
        for ex, sym, ds in store.datasets():
            click.echo(f"{ex} {sym} {ds}")
        return
    sidecar = Path(target).with_suffix(".json") if target.endswith(".parquet") else None
    meta = json.loads(sidecar.read_text()) if sidecar is not None and sidecar.exists() else None
    try:
        raw = read_candles(target)
        tf = timeframe or infer_timeframe(raw.index)
        if meta is not None and meta.get("cleaning"):
            report = CleaningReport.from_dict(meta["cleaning"])
        else:
            _, report = clean_candles(raw, tf)
    except DataError as exc:
        raise click.ClickException(str(exc)) from exc
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


@data.command("synth")
@click.option(
    "--model",
    type=click.Choice(["default", "gbm", "merton", "regime"]),
    default="default",
    show_default=True,
)
@click.option("--n-bars", default=20_000, show_default=True)
@click.option("--seed", default=0, show_default=True)
@click.option("--timeframe", default="1m", show_default=True)
@click.option("--sigma", default=0.001, show_default=True, help="per-bar vol (gbm, merton)")
@click.option("--jump-rate", default=0.001, show_default=True, help="jumps per bar (merton)")
@click.option("--jump-mean", default=0.0, show_default=True, help="mean log jump (merton)")
@click.option("--jump-std", default=0.01, show_default=True, help="std of log jump (merton)")
@click.option("--out", default=None, help="output Parquet (default: synth-<model>-<seed>.parquet)")
def synth(model, n_bars, seed, timeframe, sigma, jump_rate, jump_mean, jump_std, out) -> None:
    """Generate synthetic candles and write them as Parquet."""
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
    target = Path(out) if out else Path(f"synth-{model}-{seed}.parquet")
    atomic_write_bytes(target, frame_to_parquet_bytes(df))
    click.echo(str(target))
