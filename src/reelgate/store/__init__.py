"""Persistence: accounts, credentials, tasks and the outbox; the store is also the queue."""

from .accounts import Account, Credentials
from .store import Heartbeat, NewTask, Store, TaskEvent

__all__ = ["Account", "Credentials", "Heartbeat", "NewTask", "Store", "TaskEvent"]
