"""The local dataset store: one Parquet file per (exchange, symbol, dataset) plus a JSON sidecar.

Layout: ``<root>/<exchange>/<symbol>/<dataset>.parquet`` and ``<dataset>.json``, where the
symbol's ``/`` and ``:`` become ``-`` and ``_`` (``ETH/USDT:USDT`` -> ``ETH-USDT_USDT``) and the
dataset is a timeframe (``1m``), ``funding`` or ``orderbook``. The root is ``--store``, else the
environment variable ``MARKETSIM_STORE``, else ``data_store/`` in the current directory.
Every write is atomic (temporary file in the same folder, flush, fsync, ``os.replace``), so a
failed import or fetch never leaves a half-written file. A dataset and its sidecar change together
or not at all: :meth:`DataStore.write` holds a lock on the symbol's folder, writes the new Parquet
beside the old one (``<dataset>.parquet.new``), then the sidecar (the commit point), then renames
the Parquet into place; a reader that finds a ``.new`` file left by a crash finishes the rename if
the sidecar already describes it and deletes it otherwise. See docs/marketsim/data.md, "The
store", and docs/guide/reliability.md.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from marketsim.data.report import CleaningReport
from marketsim.data.schema import INDEX_NAME, DataError
from rlcore.io import atomic_write_bytes, fsync_dir, locked

STORE_ENV = "MARKETSIM_STORE"
DEFAULT_ROOT = "data_store"
FORMAT_VERSION = 1
_SAFE = re.compile(r"^[A-Za-z0-9._-]+$")


def default_store_root() -> Path:
    """``$MARKETSIM_STORE`` if set, else ``./data_store``."""
    return Path(os.environ.get(STORE_ENV) or DEFAULT_ROOT)


def symbol_to_dirname(symbol: str) -> str:
    """File-system name of a ccxt symbol: ``ETH/USDT:USDT`` -> ``ETH-USDT_USDT``."""
    name = symbol.replace("/", "-").replace(":", "_")
    if not name or not _SAFE.match(name) or name in (".", ".."):
        raise ValueError(f"symbol {symbol!r} cannot be a store folder name")
    return name


def content_hash(df: pd.DataFrame) -> str:
    """SHA-256 of a frame's values: index (int64 ns), then each column's name, dtype and bytes."""
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(pd.DatetimeIndex(df.index).as_unit("ns").asi8).tobytes())
    for col in df.columns:
        values = df[col].to_numpy()
        h.update(f"|{col}:{values.dtype.str}|".encode())
        if values.dtype == object:
            h.update(json.dumps(values.tolist(), default=str).encode())
        else:
            h.update(np.ascontiguousarray(values).tobytes())
    return "sha256:" + h.hexdigest()


def frame_to_parquet_bytes(df: pd.DataFrame) -> bytes:
    """Serialise a time-indexed frame to Parquet bytes (pyarrow, index kept)."""
    import io

    buf = io.BytesIO()
    df.to_parquet(buf, engine="pyarrow", index=True)
    return buf.getvalue()


def read_parquet_frame(path: str | Path) -> pd.DataFrame:
    """Read a store Parquet file; a missing, truncated or corrupt file raises ``DataError``."""
    p = Path(path)
    if not p.exists():
        raise DataError("file not found", file=str(p))
    if p.stat().st_size == 0:
        raise DataError("empty file; expected a Parquet file", file=str(p))
    try:
        df = pd.read_parquet(p, engine="pyarrow")
    except Exception as exc:  # pyarrow raises ArrowInvalid / OSError for damaged files
        raise DataError(
            f"not a complete Parquet file ({type(exc).__name__}: {exc}); expected the "
            "'PAR1' footer of a Parquet file written by the store",
            file=str(p),
        ) from exc
    if not isinstance(df.index, pd.DatetimeIndex):
        raise DataError(
            f"expected a DatetimeIndex named {INDEX_NAME!r}, got {type(df.index).__name__}",
            file=str(p),
        )
    index = df.index if df.index.tz is not None else df.index.tz_localize("UTC")
    df.index = pd.DatetimeIndex(index.tz_convert("UTC"), name=INDEX_NAME).as_unit("ns")
    return df


class DataStore:
    """A folder of Parquet datasets with JSON provenance sidecars."""

    def __init__(self, root: str | Path | None = None) -> None:
        """Open (not create) the store at ``root`` (default: :func:`default_store_root`)."""
        self.root = Path(root) if root is not None else default_store_root()

    def path(self, exchange: str, symbol: str, dataset: str) -> Path:
        """The Parquet path of one dataset."""
        if not _SAFE.match(exchange) or not _SAFE.match(dataset):
            raise ValueError(f"bad exchange {exchange!r} or dataset {dataset!r} name")
        return self.root / exchange / symbol_to_dirname(symbol) / f"{dataset}.parquet"

    def sidecar_path(self, exchange: str, symbol: str, dataset: str) -> Path:
        """The JSON sidecar path of one dataset."""
        return self.path(exchange, symbol, dataset).with_suffix(".json")

    def exists(self, exchange: str, symbol: str, dataset: str) -> bool:
        """True when the dataset's Parquet file exists."""
        p = self.path(exchange, symbol, dataset)
        self._recover(p)
        return p.exists()

    def _recover(self, p: Path) -> None:
        """Finish or undo a write that a crash interrupted (see the module docstring)."""
        new = p.with_name(p.name + ".new")
        if not new.exists():
            return
        with locked(p.parent):
            if not new.exists():  # another reader finished it meanwhile
                return
            try:
                meta = json.loads(p.with_suffix(".json").read_text())
                done = meta.get("content_hash") == content_hash(read_parquet_frame(new))
            except (OSError, ValueError, DataError):
                done = False
            if done:
                os.replace(new, p)
            else:
                new.unlink(missing_ok=True)
            fsync_dir(p.parent)

    def read(self, exchange: str, symbol: str, dataset: str, verify: bool = False) -> pd.DataFrame:
        """Read one dataset; with ``verify`` also check the sidecar's content hash."""
        p = self.path(exchange, symbol, dataset)
        self._recover(p)
        if not verify:
            return read_parquet_frame(p)
        if not p.parent.is_dir():
            raise DataError("file not found", file=str(p))
        with locked(p.parent):  # the pair as one writer left it
            df = read_parquet_frame(p)
            meta = self.read_meta(exchange, symbol, dataset)
        actual = content_hash(df)
        if meta.get("content_hash") != actual:
            raise DataError(
                f"content hash {actual} differs from the sidecar's {meta.get('content_hash')}",
                file=str(p),
            )
        return df

    def read_meta(self, exchange: str, symbol: str, dataset: str) -> dict[str, Any]:
        """The dataset's sidecar as a dict."""
        p = self.sidecar_path(exchange, symbol, dataset)
        try:
            return json.loads(p.read_text())
        except FileNotFoundError:
            raise DataError("sidecar not found", file=str(p)) from None
        except json.JSONDecodeError as exc:
            raise DataError(f"invalid JSON sidecar: {exc}", file=str(p)) from exc

    def last_timestamp(self, exchange: str, symbol: str, dataset: str) -> pd.Timestamp | None:
        """Open time of the last stored row, or None when the dataset does not exist."""
        if not self.exists(exchange, symbol, dataset):
            return None
        df = self.read(exchange, symbol, dataset)
        return df.index.max() if len(df) else None

    def write(
        self,
        df: pd.DataFrame,
        exchange: str,
        symbol: str,
        dataset: str,
        source: str,
        report: CleaningReport | None = None,
        extra: dict[str, Any] | None = None,
    ) -> Path:
        """Write (replace) one dataset and its sidecar atomically; returns the Parquet path.

        The frame must be time-indexed (UTC); it is serialised before anything is replaced.
        """
        if not isinstance(df.index, pd.DatetimeIndex) or str(df.index.tz) != "UTC":
            raise DataError("expected a UTC DatetimeIndex to store", file=source)
        p = self.path(exchange, symbol, dataset)
        payload = frame_to_parquet_bytes(df)
        meta: dict[str, Any] = {
            "format_version": FORMAT_VERSION,
            "exchange": exchange,
            "symbol": symbol,
            "dataset": dataset,
            "source": source,
            "rows": int(len(df)),
            "first": df.index.min().isoformat() if len(df) else None,
            "last": df.index.max().isoformat() if len(df) else None,
            "content_hash": content_hash(df),
            "written_at": datetime.now(timezone.utc).isoformat(),
            "cleaning": report.to_dict() if report is not None else None,
        }
        if extra:
            meta.update(extra)
        sidecar = json.dumps(meta, indent=2, default=str).encode()
        p.parent.mkdir(parents=True, exist_ok=True)
        # --8<-- [start:commit]
        with locked(p.parent):  # two writers of one dataset take turns
            new = p.with_name(p.name + ".new")
            atomic_write_bytes(new, payload)  # 1. the new data beside the old
            atomic_write_bytes(p.with_suffix(".json"), sidecar)  # 2. commit: the sidecar says it
            os.replace(new, p)  # 3. into place
            fsync_dir(p.parent)
        # --8<-- [end:commit]
        return p

    def datasets(self) -> list[tuple[str, str, str]]:
        """All ``(exchange, symbol_dirname, dataset)`` triples in the store."""
        if not self.root.exists():
            return []
        out = []
        for f in sorted(self.root.glob("*/*/*.parquet")):
            out.append((f.parent.parent.name, f.parent.name, f.stem))
        return out
