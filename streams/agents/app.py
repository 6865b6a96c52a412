"""The Faust application of the worker: thin wiring around :class:`BatchHandler`.

One agent consumes the touchpoints, outreach-outcomes and erasure topics and
the worker's internal stall-tick topic as one stream, so every change to a
customer's state is made by the one agent that owns the customer's
partition, in partition order. All these topics have the same partition count,
so Faust's assignor co-partitions them with the state table's changelog.

Per batch (:class:`~streams.agents.batching.EventBatcher`): handle (pure), then
publish (:class:`~streams.agents.publish.Publisher`: the outputs acknowledged by
Kafka, then the state's changelog records acknowledged, then the local store,
then the snapshots offered to the Redis write-behind; retried until it
succeeds), then ack the events. Faust commits acked offsets only
(``at_least_once``); the engine's event-id de-duplication makes a redelivered
batch change nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import signal
import time
from typing import Any

import faust
from prometheus_client import CollectorRegistry

from streams.agents.batching import EventBatcher
from streams.agents.failures import read_state
from streams.agents.handler import BatchHandler, TopicNames
from streams.agents.progress import ProgressMonitor, probe_records
from streams.agents.publish import Publisher
from streams.agents.records import InRecord, partition_of
from streams.agents.redis_reconcile import RedisReconciler
from streams.agents.rewind import HANDLED_ATTR, RewindingTransport
from streams.agents.stopping import exit_hard_after, release_unacked
from streams.agents.table_store import TableStore
from streams.agents.watchdog import PartitionProgress, ProgressWatchdog
from streams.engine import DeadlineIndex, Engine, load_rules
from streams.errors import PublishAbandoned
from streams.settings import Settings
from streams.sinks.metrics import WorkerMetrics, create_worker_metrics
from streams.sinks.redis_writer import RedisWriteBehind
from streams.sinks.topics import ticks_topic_name

log = logging.getLogger(__name__)

__all__ = ["Worker", "faust_settings", "partition_of", "ticks_topic_name"]

TABLE_NAME = "customer-state"
LAG_INTERVAL_SECONDS = 5.0
EXIT_STUCK = 75  # EX_TEMPFAIL: a temporary failure, start me again
STOP_GRACE_SECONDS = 30.0  # a stuck worker's orderly stop gets this long, then it exits


def faust_settings(settings: Settings) -> dict[str, Any]:
    """Faust configuration derived from the one settings object."""
    advertised = {"web_host": settings.worker_web_host} if settings.worker_web_host else {}
    return {
        **advertised,
        "broker": [f"kafka://{b}" for b in settings.broker_list],
        "store": settings.store,
        "datadir": settings.data_dir,
        "processing_guarantee": "at_least_once",
        "key_serializer": "raw",
        "value_serializer": "raw",
        "topic_partitions": settings.partitions,
        "topic_replication_factor": settings.replication_factor,
        "table_standby_replicas": settings.standby_replicas,
        "consumer_auto_offset_reset": "earliest",
        "web_port": settings.worker_web_port,
        # The built-in /table pages would serve customer state to anyone; /router must
        # stay on for table_route (it tells which worker owns a key, nothing more).
        "web_tables_enabled": False,
        "web_stats_enabled": False,
        "web_graph_enabled": False,
        "web_metrics_enabled": False,
        "web_router_enabled": True,
        "producer_acks": -1,
        # A batch produces hundreds of ~1 KB snapshots and changelog records: let one
        # produce request carry them (the default 16 KB batch holds about 15).
        "producer_max_batch_size": 512 * 1024,
    }


class Worker:
    """A configured worker: Faust app, table, handler, Redis writer and metrics."""

    def __init__(
        self,
        settings: Settings,
        *,
        engine: Engine | None = None,
        registry: CollectorRegistry | None = None,
        redis_client: Any = None,
    ) -> None:
        self.settings = settings
        self.engine = engine or Engine(load_rules(settings.rules_path or None))
        self.registry = registry or CollectorRegistry()
        self.topics = TopicNames.from_settings(settings, ticks_topic_name(settings))
        self.metrics: WorkerMetrics = create_worker_metrics(
            self.registry,
            topics=(self.topics.touchpoints, self.topics.outcomes, self.topics.erasure),
        )
        self.app = faust.App(settings.app_id, **faust_settings(settings))
        # Before anything creates the transport (the table and topics below do): see rewind.py.
        self.app.transport = RewindingTransport(self.app.conf.broker_consumer, self.app)
        # Next offset to handle per partition, kept across rebalances (unlike next_offsets):
        # where the rewinding consumer goes back to when nothing was committed yet.
        self.handled: dict[tuple[str, int], int] = {}
        setattr(self.app, HANDLED_ATTR, self.handled)
        self.table = self.app.Table(
            TABLE_NAME,
            # bytes types select the raw codec for the changelog: keys are the utf-8
            # customer id, values CustomerState.to_bytes(), exactly as stored.
            key_type=bytes,
            value_type=bytes,
            partitions=settings.partitions,
            help="Serialized CustomerState per customer id",
        )
        self.store = TableStore(self.table)
        self.deadlines = DeadlineIndex()
        self.handler = BatchHandler(
            self.engine,
            self.topics,
            self.store,
            self.deadlines,
            self.metrics,
            time.time,
            max_future_skew=settings.max_future_skew_seconds,
            partitions=settings.partitions,
            redis_ttl=settings.score_ttl_seconds,
        )
        if redis_client is None:
            import redis.asyncio as aioredis

            redis_client = aioredis.Redis.from_url(
                settings.redis_url, socket_connect_timeout=1.0, socket_timeout=2.0
            )
        self.redis = RedisWriteBehind(
            redis_client,
            prefix=settings.topic_prefix,
            ttl_seconds=settings.score_ttl_seconds,
            metrics=self.metrics,
            batch_size=settings.redis_batch_size,
            flush_interval=settings.redis_flush_interval_seconds,
            queue_max=settings.redis_queue_max,
        )
        # Heals Redis after each recovery (see redis_reconcile); the app stops it on stop.
        self.reconciler = RedisReconciler(
            self.redis, self.engine, self.store.lookup, self.metrics,
            partitions=settings.partitions, spawn=self.app.add_future,
        )  # fmt: skip
        self.publisher = Publisher(
            self._send,
            self.store,
            self.redis,
            on_failure=self.metrics.publish_failures.inc,
            stopping=lambda: bool(self.app.should_stop),
        )
        self.next_offsets: dict[tuple[str, int], int] = {}
        self.exit_code: int | None = None  # set when the worker stops itself
        self.progress = ProgressMonitor(
            self.app,
            (self.topics.touchpoints, self.topics.outcomes, self.topics.erasure),
            self.next_offsets,
            self.metrics,
            ProgressWatchdog(settings.stuck_after_seconds),
            recovered=lambda: self.recovered(),
            on_stuck=self.stop_stuck,
            publishing_since=lambda: self.publisher.publishing_since,
            probe=functools.partial(probe_records, settings.broker_list),
        )
        self.metrics.consumer_stuck_after_seconds.set(settings.stuck_after_seconds)
        self.customers = 0
        self.state_bytes = 0
        self._wire()

    # -- wiring -------------------------------------------------------------------------
    def _wire(self) -> None:
        app, s, topics = self.app, self.settings, self.topics
        source = app.topic(
            topics.touchpoints,
            topics.outcomes,
            topics.erasure,
            topics.ticks,
            key_type=bytes,
            value_type=bytes,
            key_serializer="raw",
            value_serializer="raw",
        )
        self.ticks = app.topic(
            topics.ticks, key_serializer="raw", value_serializer="raw", partitions=s.partitions
        )

        @app.agent(source, name="touchpoints")
        async def process(stream: Any) -> None:
            batcher = EventBatcher(stream, s.batch_size, s.batch_timeout_seconds)
            # Closing the generator on the way out also stops its drainer: were this
            # agent restarted on the same stream, an orphan drainer would swallow events.
            abandoned: PublishAbandoned | None = None
            async with contextlib.aclosing(batcher.batches()) as batches:
                try:
                    async for events in batches:
                        await self.process_events(events)
                except PublishAbandoned as exc:
                    abandoned = exc
            if abandoned is not None:
                # The worker is stopping with a batch it could not publish: it stays
                # unacknowledged, and Faust must not wait for it (see stopping.py).
                log.warning("%s", abandoned)
                self.store.bind(())
                release_unacked(self.app.consumer)

        @app.on_partitions_revoked.connect
        async def on_revoked(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
            revoked = args[0] if args else kwargs.get("revoked", ())
            self.forget_revoked({(tp.topic, tp.partition) for tp in revoked})

        @app.timer(s.stall_check_interval_seconds or 30.0, name="stall-check")
        async def stall_check() -> None:
            await self.send_stall_ticks(time.time())

        @app.timer(LAG_INTERVAL_SECONDS, name="consumer-lag")
        async def consumer_lag() -> None:
            await self.update_lag()

        @app.task
        async def redis_write_behind() -> None:
            try:
                await self.redis.run()
            except asyncio.CancelledError:
                if not await self.redis.drain(timeout=2.0):
                    left = list(self.redis.queue.values())
                    erasures = sum(snapshot is None for snapshot in left)
                    log.warning(
                        "stopping with %d Redis update(s) unwritten (%d of them erasures): "
                        "the next worker to recover these partitions reconciles Redis "
                        "with its table; if none will run, `touchpoint redis rebuild` "
                        "writes them from the scores topic once Redis is up",
                        len(left),
                        erasures,
                    )
                raise

        @self.table.on_recover
        async def rebuild_deadlines() -> None:
            owned_customers = self.rebuild_from_table()
            self.reconciler.start(
                self.assigned_partitions(),
                owned_customers,
                ready=self.recovered,
                assignment=lambda: (
                    self.app.consumer_generation_id,
                    self.app.rebalancing_count,
                ),
            )

        from streams.agents.web import register_views

        register_views(self)

    # -- hot path -----------------------------------------------------------------------
    async def process_events(self, events: list[Any]) -> None:
        """Handle one batch of Faust events and publish its result (retrying until done)."""
        records = [_to_record(e) for e in events]
        self.store.bind(events)
        result = self.handler.handle_batch(records)
        await self.publisher.publish(result)
        self.customers += result.customers_delta
        self.state_bytes += result.state_bytes_delta
        self.metrics.table_customers.set(self.customers)
        self.metrics.state_bytes.set(self.state_bytes)
        positions = {(r.topic, r.partition): r.offset + 1 for r in records}  # the last wins
        self.next_offsets.update(positions)
        self.handled.update(positions)

    async def _send(
        self, topic: str, key: bytes | None, value: bytes | None, partition: int | None
    ) -> Any:
        return await self.app.producer.send(topic, key, value, partition, None, None)

    def forget_revoked(self, revoked: set[tuple[str, int]]) -> None:
        """After a rebalance took partitions away: drop what this worker knew of them.

        Their lag series and positions (the new owner reports them), and the queued
        Redis snapshots of their customers: written late, during a Redis outage, they
        could overwrite what the new owner wrote since. Tombstones stay queued (an
        erasure must reach Redis). The deadline index is rebuilt on the next recovery,
        which also starts a new Redis reconciliation (the running one stops here).
        """
        self.reconciler.stop()
        for topic, partition in revoked:
            self.next_offsets.pop((topic, partition), None)
        self.progress.forget(revoked)
        gone = {p for t, p in revoked if t == self.topics.touchpoints}
        if gone:
            n = self.settings.partitions
            dropped = self.redis.drop_snapshots(lambda cid: partition_of(cid, n) in gone)
            if dropped:
                log.info("dropped %d queued Redis snapshots of revoked partitions", dropped)

    # -- stall checks ---------------------------------------------------------------------
    async def send_stall_ticks(self, now: float) -> int:
        """Route due stall checks to the owning agent as tick records; return how many."""
        if not self.recovered():
            return 0
        ticks = self.handler.due_ticks(now)
        try:
            pending = [
                await self._send(
                    self.topics.ticks,
                    tick.customer_id.encode(),
                    tick.to_bytes(),
                    partition
                    if partition is not None
                    else partition_of(tick.customer_id, self.settings.partitions),
                )
                for partition, tick in ticks
            ]
            if pending:
                await asyncio.gather(*pending)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 (a timer that raises would stop the worker)
            # The due checks were taken out of the index: put them back, due now, so the
            # next round sends them (a stall tick is idempotent: a duplicate changes nothing).
            for _, tick in ticks:
                self.handler.deadlines.add(tick.customer_id, tick.journey_id, now)
            log.warning(
                "sending %d stall check(s) failed (%s: %s); they are retried on the next "
                "round: check that Kafka is up (`touchpoint stack status`)",
                len(ticks),
                type(exc).__name__,
                exc,
            )
            return 0
        return len(ticks)

    def recovered(self) -> bool:
        """True once table recovery finished and no rebalance is under way."""
        recovery = getattr(self.app.tables, "recovery", None)
        if recovery is None or self.app.rebalancing:
            return False
        return bool(recovery.completed.is_set())

    def assigned_partitions(self) -> set[int]:
        """Partitions of the touchpoints topic actively assigned to this worker."""
        return {
            tp.partition
            for tp in self.app.assignor.assigned_actives()
            if tp.topic == self.topics.touchpoints
        }

    def rebuild_from_table(self) -> list[str]:
        """After (re)assignment: rebuild the deadline index and size gauges from local state;
        return the ids of the customers held for owned partitions (for the Redis reconciliation).

        The one full scan of the local table; only customers of partitions this
        worker now owns are indexed (a standby copy belongs to another owner). A state
        that cannot be decoded is skipped (logged and counted in
        ``cx_state_unreadable_total{operation="recover"}``): it still counts as held,
        and a record for that customer goes to the DLQ as ``state_unreadable``.
        """
        owned = self.assigned_partitions()
        self.handler.home_partition.clear()
        fresh = DeadlineIndex()
        customers = total = 0
        owned_customers: list[str] = []
        for key, raw in list(self.table.items()):
            cid = bytes(key).decode("utf-8", "replace")
            partition = partition_of(cid, self.settings.partitions)
            if partition not in owned:
                continue
            customers += 1
            total += len(raw)
            owned_customers.append(cid)
            try:
                state = read_state(bytes(raw))
                deadlines = self.engine.pending_deadlines(state)
            except Exception as exc:  # noqa: BLE001 (one bad state must not stop every recovery)
                log.warning("recovery skips customer state at partition %d: %s", partition, exc)
                self.metrics.count_state_unreadable("recover")
                continue
            for journey_id, deadline in deadlines:
                fresh.add(cid, journey_id, deadline)
                self.handler.home_partition[cid] = partition
        self.deadlines = self.handler.deadlines = fresh
        self.customers, self.state_bytes = customers, total
        self.metrics.table_customers.set(customers)
        self.metrics.state_bytes.set(total)
        log.info("recovered %d customers (%d bytes), %d deadlines", customers, total, len(fresh))
        return owned_customers

    # -- progress -----------------------------------------------------------------------
    async def update_lag(self) -> None:
        """Consumer lag and waiting time per assigned partition, and the stuck verdict."""
        await self.progress.check(time.monotonic())  # durations: never the wall clock

    def stop_stuck(self, stuck: list[PartitionProgress]) -> None:
        """A stuck worker stops (SIGTERM to itself: the same orderly stop as an operator's)
        and exits with :data:`EXIT_STUCK`, so that its supervisor starts it again."""
        if not self.settings.exit_when_stuck:
            return
        log.error(
            "stopping so that the supervisor restarts this worker (exit code %d); "
            "set TOUCHPOINT_EXIT_WHEN_STUCK=false to keep a stuck worker running",
            EXIT_STUCK,
        )
        self.exit_code = EXIT_STUCK
        exit_hard_after(STOP_GRACE_SECONDS, EXIT_STUCK)
        os.kill(os.getpid(), signal.SIGTERM)


def _to_record(event: Any) -> InRecord:
    message = event.message
    timestamp = message.timestamp
    return InRecord(
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        key=message.key,
        value=message.value,
        timestamp=float(timestamp) if timestamp else None,
    )
