"""Per-customer state in a Faust table, read and written at an explicit partition.

A batch mixes partitions, but a Faust table decides a key's store partition
(RocksDB) and changelog partition from the *current event*. :class:`TableStore`
therefore makes the event of the record's own partition current around every
read and write, so each customer's state stays in the partition its records
arrive in, and a restarted or rebalanced worker recovers it from that
changelog partition.

The caller produces the changelog records (:meth:`TableStore.changelog_for`)
with the rest of the batch and awaits them (``table[key] = value`` would queue
each record on Faust's producer buffer, one event-loop round per record, and
stall the consumer when more than 100 are waiting); only then are they written
to the table's local store (:meth:`TableStore.write_local`), and
:meth:`TableStore.persisted` records the changelog offsets in the store, as
Faust's own send callback does, so that RocksDB recovery starts after them.
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

    def changelog_for(
        self, writes: Mapping[str, tuple[int, bytes | None]]
    ) -> list[ChangelogRecord]:
        """The changelog records for ``{customer_id: (partition, value or None to delete)}``.

        Key = customer id, at the same partition; None = tombstone, only for a key the
        store holds. Nothing is written here: the caller produces these records, waits
        for their acknowledgement, then applies them with :meth:`write_local`, so the
        local store never holds a state its changelog lacks.
        """
        data = self.table.data
        changelog: list[ChangelogRecord] = []
        for customer_id, (partition, value) in writes.items():
            key = customer_id.encode()
            if value is None:
                with self._at(partition):
                    if key not in data:
                        continue
            changelog.append((partition, key, value))
        return changelog

    def write_local(self, changelog: Iterable[ChangelogRecord]) -> None:
        """Apply acknowledged changelog records to the local store (RocksDB or memory)."""
        data = self.table.data
        for partition, key, value in changelog:
            with self._at(partition):
                if value is None:
                    if key in data:
                        del data[key]
                else:
                    data[key] = value

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
