"""Per-customer state in a Faust table, read and written at an explicit partition.

A batch mixes partitions, but a Faust table decides a key's store partition
(RocksDB) and changelog partition from the *current event*. :class:`TableStore`
therefore makes the event of the record's own partition current around every
read and write, so each customer's state stays in the partition its records
arrive in, and a restarted or rebalanced worker recovers it from that
changelog partition.

Writes go to the table's local store directly, and the changelog records are
returned to the caller to produce and await with the rest of the batch
(``table[key] = value`` would queue each record on Faust's producer buffer,
one event-loop round per record, and stall the consumer when more than 100
are waiting). :meth:`TableStore.persisted` then records the changelog offsets
in the store, as Faust's own send callback does, so that RocksDB recovery
starts after them.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from faust.streams import _current_event

ChangelogRecord = tuple[int, bytes, bytes | None]  # (partition, key, value or None = delete)


class TableStore:
    """The handler's state store over a Faust table (keys: utf-8 customer id; raw values)."""

    def __init__(self, table: Any) -> None:
        self.table = table
        self._events: dict[int, Any] = {}

    @property
    def changelog_topic(self) -> str:
        return str(self.table.changelog_topic.get_topic_name())

    def bind(self, events: Iterable[Any]) -> None:
        """Remember one event per partition of the batch about to be handled."""
        self._events = {event.message.partition: event for event in events}

    @contextmanager
    def _at(self, partition: int) -> Iterator[None]:
        event = self._events.get(partition)
        token = _current_event.set(weakref.ref(event) if event is not None else None)
        try:
            yield
        finally:
            _current_event.reset(token)

    def get(self, customer_id: str, partition: int) -> bytes | None:
        with self._at(partition):
            value = self.table.get(customer_id.encode())
        return bytes(value) if value is not None else None

    def write(self, writes: Mapping[str, tuple[int, bytes | None]]) -> list[ChangelogRecord]:
        """Apply ``{customer_id: (partition, value or None to delete)}`` to the local store.

        Returns the changelog records the caller must produce (key = customer id,
        at the same partition; None = tombstone) before the batch is acknowledged.
        """
        data = self.table.data
        changelog: list[ChangelogRecord] = []
        for customer_id, (partition, value) in writes.items():
            key = customer_id.encode()
            with self._at(partition):
                if value is None:
                    if key not in data:
                        continue
                    del data[key]
                else:
                    data[key] = value
            changelog.append((partition, key, value))
        return changelog

    def persisted(self, results: Iterable[Any]) -> None:
        """Record the newest changelog offset per partition (``RecordMetadata`` results)."""
        newest: dict[Any, int] = {}
        for md in results:
            tp = md.topic_partition
            newest[tp] = max(md.offset, newest.get(tp, -1))
        for tp, offset in newest.items():
            self.table.data.set_persisted_offset(tp, offset)

    def lookup(self, customer_id: str) -> bytes | None:
        """Read outside stream processing (web views): every local partition is searched."""
        value = self.table.get(customer_id.encode())
        return bytes(value) if value is not None else None
