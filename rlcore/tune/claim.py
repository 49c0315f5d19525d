"""The claim on a study's next trial: one worker at a time counts the trials and starts one, so
two workers never both start the last (docs/guide/tuning.md, "Storage, workers and resuming").

A journal study's claim is ``fcntl.flock`` on ``<journal>.claim``; a database study's is the
server's own named lock (PostgreSQL's ``pg_advisory_lock``, MySQL's ``GET_LOCK``) on a
connection of its own. Both die with the process that holds them: a ``kill -9`` blocks no one.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import threading
from pathlib import Path
from typing import Any

__all__ = ["FlockLock", "Claim", "FileClaim", "DatabaseClaim", "study_claim"]


class FlockLock:
    """``fcntl.flock`` on ``<journal><suffix>``: the journal file's lock (``.flock``, given to
    Optuna's journal backend) and the file claim's (``.claim``). The kernel releases it when its
    process dies, so a ``kill -9`` mid-write blocks no one; Optuna's default symlink lock would
    stay until its 30-second grace period forces it."""

    def __init__(self, journal: str | Path, suffix: str = ".flock"):
        self.path = f"{journal}{suffix}"
        self._fd: int | None = None
        self._thread = threading.Lock()

    def acquire(self) -> bool:
        """Block until this process holds the lock."""
        self._thread.acquire()
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(fd, fcntl.LOCK_EX)
        self._fd = fd
        return True

    def release(self) -> None:
        """Let the next writer in."""
        fd, self._fd = self._fd, None
        if fd is not None:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
        self._thread.release()


class Claim:
    """A lock across processes and machines, taken with ``with`` and released early by
    :meth:`release` (the worker lets go as soon as its trial exists); releasing twice is a
    no-op."""

    held = False

    def _lock(self) -> None:
        raise NotImplementedError

    def _unlock(self) -> None:
        raise NotImplementedError

    def acquire(self) -> None:
        """Block until this process holds the claim."""
        self._lock()
        self.held = True

    def release(self) -> None:
        """Let the next worker claim; nothing if not held."""
        if self.held:
            self.held = False
            self._unlock()

    def __enter__(self) -> Claim:
        self.acquire()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()


class FileClaim(Claim):
    """:class:`FlockLock` on ``<journal>.claim`` (not the journal's own lock file, which Optuna
    takes while the trial is created under this claim)."""

    def __init__(self, journal: str | Path):
        self._file = FlockLock(journal, suffix=".claim")
        self.path = self._file.path

    def _lock(self) -> None:
        self._file.acquire()

    def _unlock(self) -> None:
        self._file.release()


class DatabaseClaim(Claim):
    """The database server's named lock, on a connection opened for the claim and closed with
    it (the server frees a session's locks when its connection ends)."""

    def __init__(self, url: str, study: str):
        self.url = url
        digest = hashlib.sha1(f"rlcore-tune-{study}".encode())
        if url.startswith("postgresql"):  # the lock's key: a signed 64-bit number
            self._lock_sql, self._unlock_sql = ("SELECT pg_advisory_lock(:k)",
                                                "SELECT pg_advisory_unlock(:k)")
            self._args = {"k": int.from_bytes(digest.digest()[:8], "big", signed=True)}
        else:  # MySQL's: a name of at most 64 characters
            self._lock_sql, self._unlock_sql = "SELECT GET_LOCK(:k, -1)", "SELECT RELEASE_LOCK(:k)"
            self._args = {"k": "rlcore-tune-" + digest.hexdigest()[:32]}
        self._conn: Any = None
        self._engine: Any = None

    def _lock(self) -> None:
        import sqlalchemy
        from sqlalchemy.pool import NullPool

        if self._engine is None:
            self._engine = sqlalchemy.create_engine(self.url, poolclass=NullPool)
        self._conn = self._engine.connect()
        try:
            self._conn.execute(sqlalchemy.text(self._lock_sql), self._args)
            self._conn.commit()
        except BaseException:
            self._conn.close()
            self._conn = None
            raise

    def _unlock(self) -> None:
        import sqlalchemy

        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            conn.execute(sqlalchemy.text(self._unlock_sql), self._args)
            conn.commit()
        finally:
            conn.close()


def study_claim(journal: Path | None, url: str, study: str) -> Claim:
    """The claim of a study stored in the journal file ``journal`` or, when that is None, in the
    database at ``url`` (a URL with its driver, as the storage opened it)."""
    if journal is not None:
        return FileClaim(journal)
    return DatabaseClaim(url, study)
