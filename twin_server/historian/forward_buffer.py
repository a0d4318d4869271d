"""Store and forward: a bounded on-disk buffer of batches a sink could not take, replayed in order.

One SQLite file (``<data_dir>/forward_buffer.sqlite``): each row is one batch (line protocol text) with its
number of samples, in arrival order (``seq``). The buffer survives a restart of the twin. It holds at most
``max_samples`` samples: when a new batch does not fit, the **oldest** batches are dropped, their samples
counted (:attr:`ForwardBuffer.dropped`) and logged — recent data is the most useful after a long outage.
Used from one thread (the recorder's).
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

log = logging.getLogger("linetwin.historian")

FILE_NAME = "forward_buffer.sqlite"


class ForwardBuffer:
    """Batches waiting for the sink, oldest first."""

    def __init__(self, path: Path, max_samples: int) -> None:
        self.path = path
        self.max_samples = max_samples
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS batches (seq INTEGER PRIMARY KEY AUTOINCREMENT, "
                         "samples INTEGER NOT NULL, body TEXT NOT NULL)")
        row = self._db.execute("SELECT count(*), coalesce(sum(samples), 0) FROM batches").fetchone()
        self.batches, self.samples = int(row[0]), int(row[1])
        self.dropped = 0
        if self.batches:
            log.info("historian forward buffer %s: %d samples waiting from before the restart", path, self.samples)

    def append(self, body: str, samples: int) -> None:
        """Keep a batch (after any already waiting); drop the oldest when over ``max_samples``."""
        self._db.execute("BEGIN")
        while self.batches and self.samples + samples > self.max_samples:
            seq, n = self._db.execute("SELECT seq, samples FROM batches ORDER BY seq LIMIT 1").fetchone()
            self._db.execute("DELETE FROM batches WHERE seq = ?", (seq,))
            self.batches -= 1
            self.samples -= n
            self.dropped += n
            log.warning("historian forward buffer full (%d samples): dropped the oldest batch of %d samples "
                        "(%d dropped in all)", self.max_samples, n, self.dropped)
        self._db.execute("INSERT INTO batches (samples, body) VALUES (?, ?)", (samples, body))
        self._db.execute("COMMIT")
        self.batches += 1
        self.samples += samples

    def oldest(self) -> tuple[int, str, int] | None:
        """``(seq, body, samples)`` of the oldest waiting batch."""
        row = self._db.execute("SELECT seq, body, samples FROM batches ORDER BY seq LIMIT 1").fetchone()
        return (int(row[0]), str(row[1]), int(row[2])) if row else None

    def remove(self, seq: int, samples: int) -> None:
        """The sink took batch ``seq``."""
        self._db.execute("DELETE FROM batches WHERE seq = ?", (seq,))
        self.batches -= 1
        self.samples -= samples

    def close(self) -> None:
        self._db.close()
