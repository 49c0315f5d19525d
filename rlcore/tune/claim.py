"""The claim on a study's next trial: one worker at a time counts the trials and starts one, so
two workers never both start the last (docs/guide/tuning.md, "Storage, workers and resuming").

A journal study's claim is ``fcntl.flock`` on ``<journal>.claim``; a database study's is the
server's own named lock (PostgreSQL's ``pg_advisory_lock``, MySQL's ``GET_LOCK``) on a
connection of its own. Both die with the process that holds them: a ``kill -9`` blocks no one.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

__all__ = ["Claim", "FileClaim", "DatabaseClaim", "study_claim"]


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
    """``flock`` on ``<journal>.claim`` (:class:`rlcore.tune.study.FlockLock`; not the journal's
    own lock file, which Optuna takes while the trial is created under this claim)."""

    def __init__(self, journal: str | Path):
        from rlcore.tune.study import FlockLock

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
        self.key = "rlcore-tune-" + hashlib.sha1(study.encode()).hexdigest()[:32]
        self._conn: Any = None
        self._engine: Any = None

    def _statements(self) -> tuple[str, str, dict[str, Any]]:
        if self.url.startswith("postgresql"):  # a signed 64-bit key from the name
            k = int.from_bytes(hashlib.sha1(self.key.encode()).digest()[:8], "big", signed=True)
            return "SELECT pg_advisory_lock(:k)", "SELECT pg_advisory_unlock(:k)", {"k": k}
        return "SELECT GET_LOCK(:k, -1)", "SELECT RELEASE_LOCK(:k)", {"k": self.key}

    def _lock(self) -> None:
        import sqlalchemy
        from sqlalchemy.pool import NullPool

        if self._engine is None:
            self._engine = sqlalchemy.create_engine(self.url, poolclass=NullPool)
        lock, _, args = self._statements()
        self._conn = self._engine.connect()
        try:
            self._conn.execute(sqlalchemy.text(lock), args)
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
        _, unlock, args = self._statements()
        try:
            conn.execute(sqlalchemy.text(unlock), args)
            conn.commit()
        finally:
            conn.close()


def study_claim(journal: Path | None, url: str, study: str) -> Claim:
    """The claim of a study stored in the journal file ``journal`` or, when that is None, in the
    database at ``url`` (a URL with its driver, as the storage opened it)."""
    if journal is not None:
        return FileClaim(journal)
    return DatabaseClaim(url, study)
