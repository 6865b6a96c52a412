"""``TouchpointClient``: validate each event, then deliver it by Kafka or HTTP.

    from streams.sdk import TouchpointClient

    with TouchpointClient.kafka("127.0.0.1:9092", on_failure=report) as client:
        client.web.page_error("c-42", page="/checkout")
        client.survey("c-42", nps=3, text="third call about my refund")

Validation happens in the caller's thread, so a bad event raises
:class:`~streams.errors.ValidationError` at once (reason code, message and
JSON path from the codec) and is never queued. Delivery happens in the
background (see :mod:`streams.sdk.emitter` for buffering, retries and the
callbacks).
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Mapping
from datetime import datetime
from types import TracebackType
from typing import Any, Protocol

from streams.codec.decode import validate_event
from streams.codec.types import Rejection
from streams.errors import ValidationError
from streams.sdk.emitter import (
    Emitter,
    Event,
    FailureCallback,
    RandomSource,
    RetryPolicy,
    SendResult,
    SuccessCallback,
)
from streams.sdk.encoding import encode_event
from streams.sdk.events import format_timestamp
from streams.sdk.helpers import (
    AnyChannelEvents,
    AppEvents,
    CallCentreEvents,
    StoreEvents,
    WebEvents,
)
from streams.sdk.http_transport import DEFAULT_TIMEOUT as DEFAULT_HTTP_TIMEOUT
from streams.settings import Settings

_BATCH_SIZE = 100


class Transport(Protocol):
    def __call__(self, batch: list[Event]) -> SendResult: ...

    def close(self, timeout: float | None = ...) -> None: ...


def _shutdown(emitter: Emitter, transport: Transport, timeout: float | None) -> bool:
    """Close the emitter, then the transport, within ``timeout`` seconds in all.

    The transport gets what is left of ``timeout`` (its own default when None):
    a Kafka producer's close would otherwise wait its default 10 s more.
    """
    if emitter.on_delivery_thread():
        # Garbage collection ran the finalizer on the delivery thread (a callback dropped
        # the last reference to the client). That thread cannot wait for itself: another
        # one closes, after the callback returns.
        threading.Thread(
            target=_shutdown, args=(emitter, transport, timeout), name="touchpoint-sdk-close"
        ).start()
        return True
    deadline = None if timeout is None else time.monotonic() + timeout
    try:
        return emitter.close(timeout)
    finally:
        if deadline is None:
            transport.close()
        else:
            transport.close(max(0.0, deadline - time.monotonic()))


class TouchpointClient(AnyChannelEvents):
    """Sends touchpoint events; build one with :meth:`kafka` or :meth:`http`.

    Channel helpers: ``client.web``, ``client.app``, ``client.store``,
    ``client.call_centre``; channel-free ones (``survey``, ``complaint``,
    ``order_placed``, ``delivery_late``, ...) are methods of the client.
    Emitter options (all keyword): ``batch_size``, ``flush_interval`` (s),
    ``max_buffer``, ``retry`` (:class:`RetryPolicy`), ``on_success``,
    ``on_failure``, ``close_timeout``; ``sleep``/``rng``/``autostart`` for tests.
    """

    def __init__(
        self,
        transport: Transport,
        *,
        batch_size: int = _BATCH_SIZE,
        flush_interval: float = 1.0,
        max_buffer: int = 10_000,
        retry: RetryPolicy | None = None,
        on_success: SuccessCallback | None = None,
        on_failure: FailureCallback | None = None,
        max_future_skew: float = 300.0,
        close_timeout: float | None = 10.0,
        sleep: Any = None,
        rng: RandomSource | None = None,
        autostart: bool = True,
    ) -> None:
        super().__init__(self)
        self.transport = transport
        self.max_future_skew = max_future_skew
        self.emitter = Emitter(
            transport,
            batch_size=batch_size,
            flush_interval=flush_interval,
            max_buffer=max_buffer,
            retry=retry,
            on_success=on_success,
            on_failure=on_failure,
            sleep=sleep,
            rng=rng,
            autostart=autostart,
        )
        self.web = WebEvents(self)
        self.app = AppEvents(self)
        self.store = StoreEvents(self)
        self.call_centre = CallCentreEvents(self)
        # Deliver what is buffered when the client is garbage-collected or the
        # interpreter exits without close(): nothing leaves silently.
        self._finalizer = weakref.finalize(self, _shutdown, self.emitter, transport, close_timeout)

    @classmethod
    def kafka(
        cls,
        brokers: str | list[str] | None = None,
        *,
        topic: str | None = None,
        settings: Settings | None = None,
        compression_type: str | None = "gzip",
        linger_ms: int = 20,
        producer_batch_size: int = 64 * 1024,
        producer_retries: int = 10,
        delivery_timeout: float = 30.0,
        bootstrap_timeout: float = 10.0,
        producer_config: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> TouchpointClient:
        """Produce straight to Kafka (default brokers and topic from the settings).

        Raises :class:`~streams.errors.KafkaUnavailable` when no broker answers
        within ``bootstrap_timeout`` seconds.
        """
        from streams.sdk.transports import KafkaTransport

        cfg = settings or Settings.from_env()
        transport = KafkaTransport(
            brokers if brokers is not None else cfg.broker_list,
            topic or cfg.touchpoints_topic,
            compression_type=compression_type,
            linger_ms=linger_ms,
            batch_size=producer_batch_size,
            retries=producer_retries,
            delivery_timeout=delivery_timeout,
            bootstrap_timeout=bootstrap_timeout,
            **dict(producer_config or {}),
        )
        return cls(transport, **options)

    @classmethod
    def http(
        cls,
        base_url: str | None = None,
        *,
        api_key: str,
        settings: Settings | None = None,
        timeout: float = DEFAULT_HTTP_TIMEOUT,
        **options: Any,
    ) -> TouchpointClient:
        """POST batches to the collector (default URL from the collector settings).

        ``timeout`` (seconds per request) defaults to 20, longer than the 15 s the
        collector waits for Kafka, so its verdict (200, or 503 to retry) arrives.

        ``batch_size`` is capped at the collector's 500 events per request; the
        transport also splits a batch whose body would pass 1 MiB.
        """
        from streams.collector.body import MAX_EVENTS
        from streams.sdk.transports import HttpTransport

        if base_url is None:
            cfg = settings or Settings.from_env()
            base_url = f"http://{cfg.collector_host}:{cfg.collector_port}"
        options["batch_size"] = min(int(options.get("batch_size", _BATCH_SIZE)), MAX_EVENTS)
        return cls(HttpTransport(base_url, api_key, timeout=timeout), **options)

    def track(self, event: Mapping[str, Any]) -> str:
        """Validate ``event`` (contract shape) and queue it; returns its event_id.

        Raises :class:`ValidationError` for an event the workers would reject, or
        one that cannot be encoded (``invalid_value``, e.g. a string holding a
        lone surrogate).
        A queued event is later reported to ``on_success`` or ``on_failure``
        (including when the buffer is full and it is dropped at once).
        """
        if not isinstance(event, Mapping):
            raise ValidationError(
                "not_an_object", f"an event must be a mapping, got {type(event).__name__}", "$"
            )
        body = dict(event)
        if isinstance(body.get("occurred_at"), datetime):
            body["occurred_at"] = format_timestamp(body["occurred_at"])
        checked = validate_event(body, now=time.time(), max_future_skew=self.max_future_skew)
        if isinstance(checked, Rejection):
            raise ValidationError(checked.reason, checked.message, checked.path)
        shaped = checked.to_dict()
        # The contract holds, but e.g. a lone surrogate in a string cannot be encoded:
        # refuse it here rather than fail it (and its batch) on the delivery thread.
        encoded = encode_event(shaped)
        if isinstance(encoded, ValidationError):
            raise encoded
        self.emitter.track(shaped)
        return checked.event_id

    def flush(self, timeout: float | None = None) -> bool:
        """Block until every queued event is delivered or reported failed (or timeout).

        Raises :class:`~streams.errors.DeliveryError` when called from an
        ``on_success``/``on_failure`` callback (it would wait for itself).
        """
        return self.emitter.flush(timeout)

    def close(self, timeout: float | None = None) -> bool:
        """Flush and release the transport, within ``timeout`` (default ``close_timeout``) s.

        Events still undelivered are reported to ``on_failure``. True when none were lost.
        Raises :class:`~streams.errors.DeliveryError`, leaving the client open
        and working, when called from an ``on_success``/``on_failure`` callback.
        """
        self.emitter.refuse_on_delivery_thread("close")
        if not self._finalizer.alive:
            return True
        if timeout is None:
            return bool(self._finalizer())
        self._finalizer.detach()
        return _shutdown(self.emitter, self.transport, timeout)

    def __enter__(self) -> TouchpointClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
