"""``python cli.py trade RUN_DIR --symbol ETH/USDT --timeframe 1m [--paper | --live]``.

Paper trading is the default: a replayed candle file (``--replay PATH``) or the exchange's live
bars, filled by the paper broker with the run's costs. ``--live`` sends real orders: it needs
API keys in the environment (``MARKETSIM_<EXCHANGE>_API_KEY`` / ``_SECRET``), prints what it
will do, and refuses to start without ``--confirm-live``. ``cli.py`` mounts the command.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import click

from rlcore.io import atomic_write_json

__all__ = ["trade"]


def _journal_default(run_dir: str, mode: str, exchange: str, symbol: str, timeframe: str) -> Path:
    name = f"{mode}-{exchange}-{symbol.replace('/', '').replace(':', '-')}-{timeframe}.jsonl"
    return Path(run_dir) / "live" / name


def _order_timeout(text: str) -> float | None:
    if str(text).strip().lower() == "bar":
        return None
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"--order-timeout {text!r}: expected seconds (e.g. 0.5) or 'bar'") \
            from None
    if not value > 0:
        raise ValueError(f"--order-timeout {text!r}: expected seconds > 0 or 'bar'")
    return value


@click.command(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--symbol", required=True, help="Market, e.g. ETH/USDT (its perpetual is traded).")
@click.option("--timeframe", default="1m", show_default=True, help="Bar length the run uses.")
@click.option("--paper/--live", "paper", default=True, show_default=True,
              help="Paper trading (default) or real orders on the exchange.")
@click.option("--exchange", "exchange_id", default="binanceusdm", show_default=True,
              help="ccxt.pro exchange id: binanceusdm, bybit, okx, ...")
@click.option("--replay", "replay_path", type=click.Path(exists=True, dir_okay=False),
              default=None, help="Paper: replay this candle file instead of live bars.")
@click.option("--speed", default="max", show_default=True,
              help="Replay speed: 600x plays 10 hours of 1m bars in a minute; max never sleeps.")
@click.option("--max-bars", type=int, default=None, help="Stop after this many decided bars.")
@click.option("--journal", "journal_path", default=None,
              help="Journal file (default RUN_DIR/live/<mode>-<exchange>-<symbol>-<tf>.jsonl; "
                   "a restart continues it).")
@click.option("--order-timeout", default="0.5", show_default=True,
              help="Cancel an unfilled order after this many seconds, or 'bar' (at the next bar, "
                   "as the environment's limit order).")
@click.option("--order-entry", type=click.Choice(["auto", "ws", "rest"]), default="auto",
              show_default=True, help="Live: WebSocket order entry where the exchange has it.")
@click.option("--max-position", type=float, default=None, help="Risk: largest |position|, units.")
@click.option("--max-leverage", type=float, default=None,
              help="Risk: largest notional / equity.")
@click.option("--max-daily-loss", type=float, default=None,
              help="Kill switch: loss since the UTC day's start, as a fraction (0.05 = 5%).")
@click.option("--max-drawdown", type=float, default=None,
              help="Kill switch: drawdown from the peak, as a fraction.")
@click.option("--reduce-only", is_flag=True, help="Only orders that bring the position to flat.")
@click.option("--paper-latency-ms", type=float, default=0.0, show_default=True,
              help="Paper: delay before an order reaches the paper exchange.")
@click.option("--testnet", is_flag=True, help="Live: the exchange's testnet (ccxt sandbox mode).")
@click.option("--demo", is_flag=True, help="Live: Binance demo trading (its futures testnet).")
@click.option("--confirm-live", is_flag=True,
              help="Required with --live: I know this sends real orders with real money.")
@click.option("--clear-halt", is_flag=True,
              help="Trade again after the kill switch halted this journal.")
@click.option("--metrics-port", type=int, default=None,
              help="Serve Prometheus metrics on 127.0.0.1 at this port (default: none).")
def trade(run_dir, symbol, timeframe, paper, exchange_id, replay_path, speed, max_bars,
          journal_path, order_timeout, order_entry, max_position, max_leverage, max_daily_loss,
          max_drawdown, reduce_only, paper_latency_ms, testnet, demo, confirm_live,
          clear_halt, metrics_port) -> None:
    """Trade a trained run: on every closed bar, the policy decides from the observation it
    was trained on, and orders go out in their own tasks. Paper by default.

    Prints a summary and, last, the path of the session's summary JSON.
    """
    from marketsim.live.exchange import live_credentials, make_live_exchange
    from marketsim.live.risk import RiskLimits
    from marketsim.live.session import bar_ms_of, live_session, paper_session, run_policy
    from rlcore.continual.source import parse_speed

    try:
        if not paper and replay_path:
            raise ValueError("--replay is for paper trading; --live trades the exchange's bars")
        if paper and (testnet or demo or confirm_live):
            raise ValueError("--testnet, --demo and --confirm-live go with --live")
        if max_bars is not None and max_bars < 1:
            raise ValueError(f"--max-bars: expected an integer >= 1, got {max_bars}")
        if paper_latency_ms < 0:
            raise ValueError(f"--paper-latency-ms: expected >= 0, got {paper_latency_ms}")
        bar_ms_of(timeframe)
        limits = RiskLimits(max_position=max_position, max_leverage=max_leverage,
                            max_daily_loss=max_daily_loss, max_drawdown=max_drawdown,
                            reduce_only=reduce_only)
        timeout = _order_timeout(order_timeout)
        mode = "paper" if paper else "live"
        journal = journal_path or _journal_default(run_dir, mode, exchange_id, symbol, timeframe)
        credentials: dict[str, str] = {}
        if not paper:
            credentials = live_credentials(exchange_id)
            venue = "TESTNET" if testnet else "DEMO" if demo else "MAINNET (real money)"
            click.echo(f"LIVE trading on {exchange_id} {venue}: {symbol} {timeframe} bars, "
                       f"run {run_dir}")
            click.echo(f"  orders: market/limit as the run was trained, cancelled after "
                       f"{order_timeout}; entry over {order_entry}; API key: set (not shown)")
            click.echo(f"  risk limits: {limits.to_dict()}")
            click.echo(f"  journal: {journal}")
            if not confirm_live:
                raise ValueError("--live sends real orders: add --confirm-live to start")
        decide, cfg, info = run_policy(run_dir)
        options = {"order_timeout": timeout}
        if paper:
            candles = None
            exchange = None
            if replay_path:
                from marketsim.data import load_candles

                candles = load_candles(replay_path)
            else:
                exchange = make_live_exchange(exchange_id)
            trader, feed = paper_session(
                decide, cfg, symbol, timeframe, journal, candles=candles, exchange=exchange,
                speed=None if parse_speed(speed) == float("inf") else parse_speed(speed),
                latency=paper_latency_ms / 1000.0, limits=limits, clear_halt=clear_halt,
                **options)
        else:
            exchange = make_live_exchange(exchange_id, credentials, testnet=testnet, demo=demo)
            trader, feed = live_session(decide, cfg, exchange, symbol, timeframe, journal,
                                        credentials, order_entry=order_entry, limits=limits,
                                        clear_halt=clear_halt, **options)
    except (ValueError, TypeError, FileNotFoundError) as e:
        raise click.ClickException(str(e)) from None
    if trader.halted and not clear_halt:
        raise click.ClickException(f"{journal}: halted by the kill switch ({trader.halted}); "
                                   "pass --clear-halt to trade again")
    click.echo(f"{mode} trading {symbol} {timeframe} with {info['algo']} "
               f"(checkpoint step {info['checkpoint_step']}); journal {journal}")
    server = None
    if metrics_port is not None:  # docs/guide/deployment.md: the metrics, variant "main"
        from marketsim.deploy.exporter import TradingMetrics, observing, serve

        metrics = TradingMetrics()
        server = serve(metrics.registry, metrics_port)
        feed = observing(feed, trader, metrics)
        click.echo(f"metrics on http://127.0.0.1:{server.server_port}/metrics")
    try:
        summary = asyncio.run(trader.run(feed, max_bars=max_bars))
    except KeyboardInterrupt:
        summary = trader.summary()
    except Exception as e:  # the exchange refused to start (keys, symbol, network): say why
        from marketsim.live.orders import BrokerError

        if isinstance(e, (BrokerError, ValueError)) or type(e).__module__.startswith("ccxt"):
            message = f"{type(e).__name__}: {e}"
            for secret in credentials.values():
                message = message.replace(secret, "***") if secret else message
            raise click.ClickException(message) from None
        raise
    finally:
        trader.journal.close()
        if server is not None:
            server.shutdown()
    summary.update(mode=mode, run=info, exchange=exchange_id if not replay_path else None,
                   replay=replay_path)
    out = Path(str(journal) + ".summary.json")
    atomic_write_json(out, summary)
    click.echo(f"{summary['decisions']} decisions, {summary['orders']} orders, "
               f"{summary['fills']} fills, equity {summary['equity_start']} -> "
               f"{summary['equity_end']:.2f}" + (f"; HALTED: {summary['halted']}"
                                                 if summary["halted"] else ""))
    click.echo(str(out))
