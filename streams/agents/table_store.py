"""Per-customer state in a Faust table, read and written at an explicit partition.

A batch from ``stream.take_events`` mixes partitions, but a Faust table
decides a key's store partition (RocksDB) and changelog partition from the
*current event*. :class:`TableStore` therefore makes the event of the
record's own partition current around every read and write, so each
customer's state stays in the partition its records arrive in, and a
restarted or rebalanced worker recovers it from that changelog partition.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from faust.streams import _current_event


class TableStore:
    """The handler's state store over a Faust table (keys: utf-8 customer id; raw values)."""

    def __init__(self, table: Any) -> None:
        self.table = table
        self._events: dict[int, Any] = {}

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

    def write(self, writes: Mapping[str, tuple[int, bytes | None]]) -> None:
        """Apply ``{customer_id: (partition, value or None to delete)}`` to the table."""
        for customer_id, (partition, value) in writes.items():
            key = customer_id.encode()
            with self._at(partition):
                if value is None:
                    if key in self.table:
                        del self.table[key]
                else:
                    self.table[key] = value

    def lookup(self, customer_id: str) -> bytes | None:
        """Read outside stream processing (web views): every local partition is searched."""
        value = self.table.get(customer_id.encode())
        return bytes(value) if value is not None else None
