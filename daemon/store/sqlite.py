"""SQLite state: feeds and their health, seen items, stories, matches, alerts and the outbox.

One connection, used from one thread (the service runs store calls on a single worker thread).
WAL mode lets ``feedwatch status`` read while the daemon writes. The schema is versioned with
``PRAGMA user_version`` and migrated forward at open. Everything one poll produces is written in
one transaction (:meth:`Store.transaction`), which is what makes delivery exactly-once-in-effect.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from daemon.store.controls import ControlTables
from daemon.store.feeds import FeedTables
from daemon.store.outbox import OutboxTables


class Store(FeedTables, OutboxTables, ControlTables):
    """The only code that speaks SQL."""


if TYPE_CHECKING:
    from daemon.alerting.grouping import GroupingStore
    from daemon.alerting.ports import IngestStore

    def _serves_ingest(store: Store) -> IngestStore:
        return store  # mypy checks here that the store gives ingest every call it makes

    def _serves_grouping(store: Store) -> GroupingStore:
        return store
