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

from collections import OrderedDict
from typing import Any

import orjson

from streams.errors import KafkaUnavailable
from streams.settings import Settings

SEEN_MAX = 100_000  # alert ids remembered to skip redeliveries


class AlertFeed:
    """See the module docstring. Use as a context manager, or call :meth:`close`."""

    def __init__(self, settings: Settings, group_id: str, *, from_beginning: bool = False) -> None:
        from kafka import KafkaConsumer
        from kafka.errors import KafkaError

        self.topic = settings.at_risk_topic
        self.malformed = 0
        self.duplicates = 0
        self._seen: OrderedDict[str, None] = OrderedDict()
        try:
            self._consumer = KafkaConsumer(
                self.topic,
                bootstrap_servers=settings.broker_list,
                group_id=group_id,
                enable_auto_commit=False,
                auto_offset_reset="earliest" if from_beginning else "latest",
                client_id="touchpoint-crm-alerts",
            )
        except KafkaError as exc:
            raise KafkaUnavailable(
                f"Kafka not reachable at {settings.kafka_brokers} ({exc}): run `make stack`"
            ) from exc

    def poll(self, timeout: float = 1.0) -> list[dict[str, Any]]:
        """The alerts that arrived (possibly none) within ``timeout`` seconds."""
        alerts: list[dict[str, Any]] = []
        batches = self._consumer.poll(timeout_ms=int(timeout * 1000))
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

    def commit(self) -> None:
        """Commit what :meth:`poll` returned so far: call it once those alerts are handled."""
        self._consumer.commit()

    def close(self) -> None:
        self._consumer.close()

    def __enter__(self) -> AlertFeed:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
