"""The worker's web views (Faust web, aiohttp): health, readiness, a customer's experience.

``/v1/customers/{id}/experience`` is routed by Faust to the worker that owns the
customer's table partition; there the answer comes from the write-behind queue
(a snapshot not yet in Redis), then Redis, then the table itself.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from streams.agents.failures import UnreadableState, read_state

if TYPE_CHECKING:
    from streams.agents.app import Worker

log = logging.getLogger(__name__)

KAFKA_PROBE_TIMEOUT = 1.0


async def kafka_reachable(brokers: list[str], timeout: float = KAFKA_PROBE_TIMEOUT) -> str | None:
    """None if some broker accepts a TCP connection, else why not."""
    last = "no brokers configured"
    for broker in brokers:
        host, _, port = broker.rpartition(":")
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection(host, int(port)), timeout)
        except (OSError, TimeoutError, ValueError) as exc:
            last = f"{broker}: {exc or type(exc).__name__}"
            continue
        writer.close()
        return None
    return last


async def customer_snapshot(worker: Worker, customer_id: str) -> dict[str, Any] | None:
    """The customer's latest snapshot: write-behind queue, then Redis, then the table.

    A stored state that cannot be decoded is answered as unknown (``None``, so
    404), logged and counted in ``cx_state_unreadable_total{operation="lookup"}``.
    """
    pending = worker.redis.pending(customer_id)
    if not worker.redis.is_missing(pending):
        return pending  # type: ignore[return-value]
    try:
        cached = await worker.redis.read(customer_id)
    except Exception as exc:  # noqa: BLE001 (Redis down: the table still answers)
        log.debug("Redis read failed, falling back to the table: %s", exc)
        cached = None
    if cached is not None:
        return cached
    raw = worker.store.lookup(customer_id)
    if raw is None:
        return None
    try:
        state = read_state(raw)
    except UnreadableState as exc:
        log.warning("experience lookup cannot read a customer's state: %s", exc)
        worker.metrics.count_state_unreadable("lookup")
        return None
    snapshot: dict[str, Any] = worker.engine.snapshot(state)
    return snapshot


def register_views(worker: Worker) -> None:
    """Add the worker's pages to its Faust app."""
    app = worker.app

    @app.page("/healthz")
    async def healthz(view: Any, request: Any) -> Any:
        # Liveness: a stuck worker (records wait, its position does not move) is not
        # alive in any useful sense, and restarting it is the cure.
        progress = worker.progress
        if not progress.is_stuck:
            return view.json({"status": "ok"})
        stuck = progress.stuck
        return view.json(
            {
                "status": "stuck",
                "publishing_seconds": progress.publish_stuck_seconds,
                "stuck": [
                    {
                        "topic": p.topic,
                        "partition": p.partition,
                        "position": p.position,
                        "lag": p.lag,
                        "waiting_seconds": round(p.waiting_seconds, 1),
                    }
                    for p in stuck
                ],
                "hint": "records wait and the worker's position has not moved: restart it "
                "(see docs/operations.md#touchpoint-worker-stuck)",
            },
            status=503,
        )

    @app.page("/readyz")
    async def readyz(view: Any, request: Any) -> Any:
        kafka_problem = await kafka_reachable(worker.settings.broker_list)
        recovered = worker.recovered()
        checks = {
            "kafka": "ok" if kafka_problem is None else f"unreachable ({kafka_problem})",
            "tables": "recovered" if recovered else "recovering",
        }
        ready = kafka_problem is None and recovered
        return view.json(
            {"status": "ready" if ready else "not_ready", "checks": checks},
            status=200 if ready else 503,
        )

    @app.page("/v1/customers/{id}/experience")
    @app.table_route(table=worker.table, match_info="id")
    async def experience(view: Any, request: Any, id: str) -> Any:  # noqa: A002
        snapshot = await customer_snapshot(worker, id)
        if snapshot is None:
            return view.json(
                {"error": "not_found", "message": f"no experience recorded for customer {id!r}"},
                status=404,
            )
        return view.json(snapshot)
