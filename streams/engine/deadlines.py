"""A heap of journey deadlines, so the streaming side finds stalled journeys without a scan."""

from __future__ import annotations

import heapq


class DeadlineIndex:
    """Min-heap of (deadline, customer_id, journey_id) with lazy deletion.

    ``add`` of an existing (customer, journey) replaces its deadline; ``discard``
    forgets a customer (erasure). Stale heap entries are skipped when popped and
    compacted away when they outnumber the live ones.
    """

    __slots__ = ("_heap", "_live", "_by_customer")

    def __init__(self) -> None:
        self._heap: list[tuple[float, str, str]] = []
        self._live: dict[tuple[str, str], float] = {}
        self._by_customer: dict[str, set[str]] = {}

    def __len__(self) -> int:
        return len(self._live)

    def add(self, customer_id: str, journey_id: str, deadline_ts: float) -> None:
        key = (customer_id, journey_id)
        if self._live.get(key) == deadline_ts:
            return
        self._live[key] = deadline_ts
        self._by_customer.setdefault(customer_id, set()).add(journey_id)
        heapq.heappush(self._heap, (deadline_ts, customer_id, journey_id))
        if len(self._heap) > 2 * len(self._live) + 64:
            self._compact()

    def pop_due(self, now: float) -> list[tuple[str, str]]:
        """Remove and return every (customer_id, journey_id) whose deadline is <= now."""
        due: list[tuple[str, str]] = []
        heap = self._heap
        while heap and heap[0][0] <= now:
            deadline, cid, jid = heapq.heappop(heap)
            key = (cid, jid)
            if self._live.get(key) != deadline:
                continue  # replaced or discarded
            del self._live[key]
            journeys = self._by_customer[cid]
            journeys.discard(jid)
            if not journeys:
                del self._by_customer[cid]
            due.append(key)
        return due

    def discard(self, customer_id: str) -> None:
        """Forget every deadline of a customer (erasure, or state dropped)."""
        for jid in self._by_customer.pop(customer_id, ()):
            self._live.pop((customer_id, jid), None)

    def next_due(self) -> float | None:
        """The earliest live deadline, or None (for a timer to sleep until it)."""
        while self._heap and self._live.get(self._heap[0][1:]) != self._heap[0][0]:
            heapq.heappop(self._heap)
        return self._heap[0][0] if self._heap else None

    def _compact(self) -> None:
        self._heap = [(d, c, j) for (c, j), d in self._live.items()]
        heapq.heapify(self._heap)
