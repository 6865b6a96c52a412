"""The two ways the SDK delivers a batch: straight to Kafka, or to the HTTP collector.

Each transport is a callable ``send(batch) -> SendResult`` for the
:class:`~streams.sdk.emitter.Emitter`, plus ``close()``. Both send the
contract-shaped dicts the client validated; neither retries on its own
beyond what the Kafka producer does inside one delivery timeout, so the
emitter's backoff and callbacks apply to both.

``kafka`` is imported lazily: an HTTP-only user never loads it.
"""

from __future__ import annotations

import email.utils
import json
import math
import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import UTC, datetime
from typing import Any

import orjson

from streams.errors import ConfigError, DeliveryError, KafkaUnavailable, ValidationError
from streams.sdk.emitter import (
    Event,
    Refusal,
    RejectedDeliveryError,
    RetryableDeliveryError,
    SendResult,
)

USER_AGENT = "touchpoint-sdk-python/0.1"


class KafkaTransport:
    """Produces each event to ``topic`` with key = customer_id, value = orjson bytes.

    The producer is idempotent (``enable_idempotence=True``, ``acks='all'``),
    so its own retries inside ``delivery_timeout`` never duplicate or reorder
    a partition's records. ``gzip`` compression is the default because
    kafka-python supports it with the standard library alone; ``lz4``,
    ``snappy`` and ``zstd`` need extra packages.
    """

    def __init__(
        self,
        brokers: str | list[str],
        topic: str,
        *,
        compression_type: str | None = "gzip",
        linger_ms: int = 20,
        batch_size: int = 64 * 1024,
        retries: int = 10,
        delivery_timeout: float = 30.0,
        bootstrap_timeout: float = 10.0,
        client_id: str = "touchpoint-sdk",
        **producer_config: Any,
    ) -> None:
        from kafka import KafkaProducer
        from kafka.errors import KafkaError

        servers = [brokers] if isinstance(brokers, str) else list(brokers)
        servers = [s.strip() for part in servers for s in part.split(",") if s.strip()]
        if not servers:
            raise ConfigError("no Kafka brokers given: set TOUCHPOINT_KAFKA_BROKERS=host:port")
        self.topic = topic
        self.servers = servers
        self.delivery_timeout = delivery_timeout
        delivery_ms = max(1000, int(delivery_timeout * 1000))
        config: dict[str, Any] = {
            "bootstrap_servers": servers,
            "client_id": client_id,
            "acks": "all",
            "enable_idempotence": True,
            "compression_type": compression_type,
            "linger_ms": linger_ms,
            "batch_size": batch_size,
            "retries": retries,
            "delivery_timeout_ms": delivery_ms,
            # Java's rule, kept here too: one request must fit in the delivery timeout.
            "request_timeout_ms": max(500, min(30_000, delivery_ms - linger_ms)),
            "max_block_ms": delivery_ms,
            "bootstrap_timeout_ms": max(100, int(bootstrap_timeout * 1000)),
        }
        config.update(producer_config)
        where = ",".join(servers)
        try:
            self.producer = KafkaProducer(**config)
        # kafka-python 3 raises KafkaTimeoutError("Unable to bootstrap ..."); 2.x raised
        # NoBrokersAvailable. Both are KafkaErrors.
        except (KafkaError, OSError) as exc:
            raise KafkaUnavailable(
                f"Kafka not reachable at {where} ({exc}): run `make stack`, or point "
                "TOUCHPOINT_KAFKA_BROKERS at a running broker"
            ) from exc

    def __call__(self, batch: list[Event]) -> SendResult:
        from kafka.errors import KafkaError, KafkaTimeoutError, MessageSizeTooLargeError

        result = SendResult()
        futures: list[tuple[int, Any]] = []
        for index, event in enumerate(batch):
            key = str(event["customer_id"]).encode("utf-8")
            try:
                futures.append(
                    (index, self.producer.send(self.topic, key=key, value=orjson.dumps(event)))
                )
            except MessageSizeTooLargeError as exc:
                result.refused.append(Refusal(index, _too_large(exc)))
            except KafkaError as exc:
                self._retry(result, index, exc)
        deadline = _now() + self.delivery_timeout + 5.0
        for index, future in futures:
            try:
                future.get(timeout=max(0.1, deadline - _now()))
            except MessageSizeTooLargeError as exc:
                result.refused.append(Refusal(index, _too_large(exc)))
            except KafkaTimeoutError as exc:
                self._retry(result, index, exc)
            except KafkaError as exc:
                if getattr(exc, "retriable", False):
                    self._retry(result, index, exc)
                else:
                    result.refused.append(
                        Refusal(index, DeliveryError(f"Kafka refused the record: {exc}"))
                    )
        result.retry.sort()
        return result

    def _retry(self, result: SendResult, index: int, exc: Exception) -> None:
        result.retry.append(index)
        if result.retry_error is None:
            result.retry_error = RetryableDeliveryError(
                f"Kafka at {','.join(self.servers)} did not acknowledge in time ({exc})"
            )

    def close(self, timeout: float | None = 10.0) -> None:
        self.producer.close(timeout=timeout)


def _too_large(exc: Exception) -> ValidationError:
    return ValidationError(
        "record_too_large", f"the broker or producer refused the record as too large ({exc})", "$"
    )


def _now() -> float:
    return time.monotonic()


class HttpTransport:
    """POSTs ``{"events": [...]}`` to ``{base_url}/v1/events`` with header ``X-API-Key``.

    Answers: 2xx with per-event ``results`` (rejected ones become refusals);
    429 and 5xx and connection errors are retryable (``Retry-After`` honoured);
    any other 4xx is final, per event when the body has ``results``.
    """

    def __init__(
        self, base_url: str, api_key: str, *, timeout: float = 10.0, path: str = "/v1/events"
    ) -> None:
        parsed = urllib.parse.urlsplit(base_url)
        if parsed.scheme not in {"http", "https"} or not parsed.netloc:
            raise ConfigError(
                f"collector URL {base_url!r} must look like http://host:port or https://host"
            )
        if not api_key:
            raise ConfigError("no collector API key given: pass api_key='<secret>'")
        self.url = base_url.rstrip("/") + path
        self._api_key = api_key
        self.timeout = timeout

    def __call__(self, batch: list[Event]) -> SendResult:
        request = urllib.request.Request(  # noqa: S310 - scheme checked in __init__
            self.url,
            data=orjson.dumps({"events": batch}),
            method="POST",
            headers={
                "Content-Type": "application/json",
                "Accept": "application/json",
                "X-API-Key": self._api_key,
                "User-Agent": USER_AGENT,
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                return _results(_json(response.read()), len(batch), status=None)
        except urllib.error.HTTPError as exc:
            body = exc.read()
            status = exc.code
            if status == 429 or status >= 500:
                raise RetryableDeliveryError(
                    f"collector at {self.url} answered {status}: {_summary(body)}",
                    retry_after=parse_retry_after(exc.headers.get("Retry-After")),
                ) from exc
            parsed = _json(body)
            if isinstance(parsed, dict) and isinstance(parsed.get("results"), list):
                return _results(parsed, len(batch), status=status, summary=_summary(body))
            raise RejectedDeliveryError(
                f"collector at {self.url} answered {status}: {_summary(body)}{_hint(status)}",
                status=status,
            ) from exc
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            reason = getattr(exc, "reason", exc)
            raise RetryableDeliveryError(
                f"collector not reachable at {self.url} ({reason}): is `touchpoint collector` "
                "running?"
            ) from exc

    def close(self, timeout: float | None = None) -> None:
        """Nothing to release: each batch opens its own connection."""


def _json(body: bytes) -> Any:
    try:
        return json.loads(body) if body else None
    except ValueError:
        return None


def _summary(body: bytes) -> str:
    parsed = _json(body)
    if isinstance(parsed, dict):
        parts = [str(parsed[k]) for k in ("error", "message", "detail") if parsed.get(k)]
        if parts:
            return ": ".join(parts)
    text = body.decode("utf-8", "replace").strip()
    return text[:200] or "(empty body)"


def _hint(status: int) -> str:
    if status in (401, 403):
        return " (check the API key sent as X-API-Key and the channels it may send)"
    if status == 413:
        return " (batch too large: lower batch_size)"
    return ""


def _results(body: Any, count: int, *, status: int | None, summary: str = "") -> SendResult:
    """Per-event answers; on a 4xx, events the server did not mention failed too."""
    result = SendResult()
    results = body.get("results") if isinstance(body, dict) else None
    if not isinstance(results, list):
        return result  # a 2xx without detail: the server took the whole batch
    seen: set[int] = set()
    for item in results:
        if not isinstance(item, dict) or not isinstance(item.get("index"), int):
            continue
        index = item["index"]
        if not 0 <= index < count or index in seen:
            continue
        seen.add(index)
        if item.get("status") != "accepted":
            result.refused.append(
                Refusal(
                    index,
                    ValidationError(
                        str(item.get("reason", "rejected")),
                        str(item.get("message", "the collector rejected the event")),
                        str(item.get("path", "$")),
                    ),
                )
            )
    if status is not None:
        for index in range(count):
            if index not in seen:
                result.refused.append(
                    Refusal(
                        index,
                        RejectedDeliveryError(
                            f"collector answered {status} without a result for this event: "
                            f"{summary or '(no detail)'}",
                            status=status,
                        ),
                    )
                )
    return result


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header: delta-seconds or an HTTP date (``now``: clock)."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if math.isnan(seconds) or math.isinf(seconds):
        return None
    return max(0.0, seconds)
