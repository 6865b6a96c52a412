"""At-risk alerts for a CRM: a consumer group on ``<prefix>.at-risk``, at least once.

:class:`AlertFeed` polls alerts (at-risk alert v1 dicts), and commits their offsets
only when :meth:`AlertFeed.commit` is called, so a CRM that crashes between receiving
an alert and acting on it gets the alert again after a restart. Redelivered alerts
(the same ``alert_id``, which the workers keep stable for the same customer, trigger,
journey and triggering event) are skipped within a bounded memory. A record that is
not an alert (not JSON, no ``alert_id``/``customer_id``) is skipped and counted in
:attr:`AlertFeed.malformed`, never fatal: one bad record must not stop a CRM.

Partitions are keyed by customer id, so one CRM consumer sees all of a customer's
alerts in order; run more consumers in the same group to share the load.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from typing import Any

import orjson

from streams.errors import KafkaUnavailable
from streams.settings import Settings

SEEN_MAX = 100_000  # alert ids remembered to skip redeliveries
COMMIT_TIMEOUT_SECONDS = 30.0

log = logging.getLogger(__name__)


class AlertFeed:
    """See the module docstring. Use as a context manager, or call :meth:`close`."""

    def __init__(
        self,
        settings: Settings,
        group_id: str,
        *,
        from_beginning: bool = False,
        max_poll_interval: float = 300.0,
    ) -> None:
        """``max_poll_interval``: the longest the CRM may take between two :meth:`poll`
        calls (handling what the last one returned) before the group gives its partitions
        to another consumer; then :meth:`commit` returns False."""
        from kafka import KafkaConsumer
        from kafka.errors import KafkaError

        self.topic = settings.at_risk_topic
        self.brokers = settings.kafka_brokers
        self.malformed = 0
        self.duplicates = 0
        self.commit_failures = 0
        self._seen: OrderedDict[str, None] = OrderedDict()
        try:
            self._consumer = KafkaConsumer(
                self.topic,
                bootstrap_servers=settings.broker_list,
                group_id=group_id,
                enable_auto_commit=False,
                auto_offset_reset="earliest" if from_beginning else "latest",
                client_id="touchpoint-crm-alerts",
                max_poll_interval_ms=int(max_poll_interval * 1000),
            )
        except KafkaError as exc:
            raise KafkaUnavailable.at(settings.kafka_brokers, exc) from exc

    def poll(self, timeout: float = 1.0, max_records: int | None = None) -> list[dict[str, Any]]:
        """The alerts that arrived (possibly none) within ``timeout`` seconds; at most
        ``max_records`` records (kafka-python's default: 500) so that a slow CRM can take
        fewer at a time. Raises :class:`KafkaUnavailable` when Kafka fails the poll."""
        from kafka.errors import KafkaError

        alerts: list[dict[str, Any]] = []
        try:
            batches = self._consumer.poll(timeout_ms=int(timeout * 1000), max_records=max_records)
        except KafkaError as exc:
            raise KafkaUnavailable(
                f"polling {self.topic} at {self.brokers} failed ({exc!r}): check Kafka "
                "(`touchpoint stack status`) and poll again"
            ) from exc
        for records in batches.values():
            for record in records:
                alert = self._decode(record.value)
                if alert is not None:
                    alerts.append(alert)
        return alerts

    def _decode(self, value: bytes | None) -> dict[str, Any] | None:
        try:
            alert = orjson.loads(value or b"")
        except orjson.JSONDecodeError:
            alert = None
        if (
            not isinstance(alert, dict)
            or not isinstance(alert.get("alert_id"), str)
            or not isinstance(alert.get("customer_id"), str)
        ):
            self.malformed += 1
            return None
        alert_id = alert["alert_id"]
        if alert_id in self._seen:
            self.duplicates += 1
            return None
        self._seen[alert_id] = None
        if len(self._seen) > SEEN_MAX:
            self._seen.popitem(last=False)
        return alert

    def commit(self, timeout: float = COMMIT_TIMEOUT_SECONDS) -> bool:
        """Commit what :meth:`poll` returned so far: call it once those alerts are handled.

        Returns False (counted in :attr:`commit_failures`, logged) when the group has
        moved on: this consumer took longer than ``max_poll_interval`` between polls, or
        was otherwise dropped from the group. Nothing is lost: those alerts are delivered
        again, to another consumer of the group or, after the next :meth:`poll` rejoins,
        to this one, which skips them as redeliveries. Raises :class:`KafkaUnavailable`
        when Kafka fails the commit or does not answer within ``timeout`` seconds.
        """
        from kafka.errors import CommitFailedError, KafkaError

        try:
            self._consumer.commit(timeout_ms=int(timeout * 1000))
        except CommitFailedError as exc:
            self.commit_failures += 1
            log.warning(
                "alerts not committed, they will be delivered again: this consumer left the "
                "group (more than max_poll_interval between polls? poll fewer with "
                "max_records): %s",
                exc,
            )
            return False
        except KafkaError as exc:
            raise KafkaUnavailable(
                f"committing alerts of {self.topic} at {self.brokers} failed ({exc!r}): check "
                "Kafka (`touchpoint stack status`) and commit again (uncommitted alerts are "
                "delivered again after a restart)"
            ) from exc
        return True

    def close(self) -> None:
        self._consumer.close()

    def __enter__(self) -> AlertFeed:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
