"""SQLite engines: a new database file switched to WAL while another process holds its write lock."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

from ecoalign.store.db import make_engine


def test_the_wal_switch_waits_for_another_writer_instead_of_failing(tmp_path: Path) -> None:
    """Switching a new file to WAL upgrades a read lock to a write lock, for which SQLite never runs its busy
    handler: without a wait of its own, every process but one that starts together on a new database failed at
    once with "database is locked" (``test_concurrent_upgrades_from_processes[sqlite]`` on a loaded machine)."""
    path = tmp_path / "new.db"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # still in rollback-journal mode, with the write lock held
    holder.execute("CREATE TABLE t (x)")
    outcome: dict[str, object] = {}

    def connect() -> None:
        engine = make_engine(f"sqlite:///{path}")
        try:
            with engine.connect() as connection:
                outcome["mode"] = connection.exec_driver_sql("PRAGMA journal_mode").scalar()
        except Exception as exc:  # what the test is about: reported below, not raised in the thread
            outcome["error"] = exc
        finally:
            engine.dispose()

    thread = threading.Thread(target=connect)
    thread.start()
    time.sleep(0.3)
    assert thread.is_alive(), outcome  # waiting for the lock, not failed
    holder.execute("COMMIT")
    holder.close()
    thread.join(timeout=30)
    assert outcome == {"mode": "wal"}
