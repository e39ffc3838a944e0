"""Task ids: 18-digit numeric strings, roughly time-ordered, unique across processes.

Layout (decimal): milliseconds since 2020-01-01 (12 digits until 2051) followed by a 3-digit
process node and a 3-digit per-millisecond sequence. The node is random per process, so two
processes collide only if they draw the same node and sequence in the same millisecond; the
store's primary key is the backstop and the creator retries with a fresh id.
"""

from __future__ import annotations

import os
import secrets
import threading
import time
import uuid

_EPOCH_MS = 1_577_836_800_000  # 2020-01-01T00:00:00Z


class TaskIdGenerator:
    def __init__(self, node: int | None = None) -> None:
        self._node = secrets.randbelow(1000) if node is None else node % 1000
        self._lock = threading.Lock()
        self._last_ms = 0
        self._seq = 0
        self._pid = os.getpid()

    def next_id(self) -> str:
        with self._lock:
            if os.getpid() != self._pid:  # forked: draw a new node
                self._pid = os.getpid()
                self._node = secrets.randbelow(1000)
            ms = now_ms()
            if ms <= self._last_ms:
                ms = self._last_ms
                self._seq += 1
                if self._seq >= 1000:  # sequence exhausted: borrow the next millisecond
                    ms += 1
                    self._seq = 0
            else:
                self._seq = 0
            self._last_ms = ms
            return f"{ms - _EPOCH_MS:012d}{self._node:03d}{self._seq:03d}"

    def reseed(self) -> None:
        """Pick a new node, used after an id collision."""
        with self._lock:
            self._node = secrets.randbelow(1000)


_default = TaskIdGenerator()


def new_task_id() -> str:
    return _default.next_id()


def reseed_task_ids() -> None:
    _default.reseed()


def new_request_id() -> str:
    return str(uuid.uuid4())


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def task_id_created_ms(task_id: str) -> int | None:
    """Unix milliseconds at which ``task_id`` was drawn (its leading 12 digits); None when
    ``task_id`` does not have the layout above."""
    if len(task_id) != 18 or not (task_id.isascii() and task_id.isdigit()):
        return None
    return int(task_id[:12]) + _EPOCH_MS
