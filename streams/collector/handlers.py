"""The collector's HTTP handlers (routes are wired in :mod:`streams.collector.app`).

Order of checks on ``POST /v1/events`` (first failure answers):
401 key -> 413 size (Content-Length, then bytes read) / 400 unreadable body (e.g. a
corrupt gzip) -> 413 event count ->
403 channels -> 429 rate limit -> 422 body not JSON / not events (to the DLQ) ->
per event: accepted (touchpoints topic) or rejected (DLQ) -> 200, or 422 if none
was accepted. 503 when Kafka does not acknowledge (nothing is "accepted" then);
500 (never 503: retrying cannot help) if a record is too large for Kafka.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Mapping
from typing import Any

import orjson
from aiohttp import web
from aiohttp.http_exceptions import ContentEncodingError
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from streams.codec.types import Rejection
from streams.collector.auth import (
    ApiKey,
    authenticate,
    forbidden_channels,
    presented_secret,
)
from streams.collector.body import (
    MAX_BODY_BYTES,
    BodyFault,
    content_length_fault,
    parse_body,
    too_large,
)
from streams.collector.context import COLLECTOR, Collector, remember_key
from streams.collector.experience import Found, NotFound
from streams.collector.ingest import dlq_out, ingest
from streams.errors import KafkaUnavailable, RecordTooLarge

log = logging.getLogger(__name__)

MAX_CUSTOMER_ID = 128
READY_TIMEOUT_SECONDS = 3.0
KAFKA_RETRY_AFTER = "5"
_READ_CHUNK = 64 * 1024
# Whole-body faults that are records in their own right and go to the DLQ.
_DLQ_BODY_FAULTS = frozenset({"invalid_json", "not_an_object", "unknown_field", "wrong_type"})


def json_response(
    status: int, body: Mapping[str, Any], headers: Mapping[str, str] | None = None
) -> web.Response:
    return web.Response(
        status=status,
        body=orjson.dumps(body),
        content_type="application/json",
        headers=headers,
    )


def json_error(
    status: int, error: str, message: str, headers: Mapping[str, str] | None = None, **extra: Any
) -> web.Response:
    return json_response(status, {"error": error, "message": message, **extra}, headers)


def _unauthorized() -> web.Response:
    return json_error(
        401,
        "unauthorized",
        "a valid API key is required: send it as `X-API-Key: <secret>` "
        "or `Authorization: Bearer <secret>`",
        headers={"WWW-Authenticate": 'Bearer realm="touchpoint"'},
    )


def _authenticate(request: web.Request, collector: Collector) -> ApiKey | None:
    key = authenticate(collector.keys, presented_secret(request.headers))
    if key is not None:
        remember_key(key.name)
    return key


def _kafka_down(exc: KafkaUnavailable) -> web.Response:
    log.error("events not accepted, Kafka did not acknowledge: %s", exc)
    return json_error(
        503,
        "kafka_unavailable",
        "events could not be written to Kafka; nothing was accepted, retry the request",
        headers={"Retry-After": KAFKA_RETRY_AFTER},
    )


def _record_too_large(exc: RecordTooLarge) -> web.Response:
    """A record Kafka would refuse: our bug, so 500 without Retry-After (a retry fails alike)."""
    request_id = uuid.uuid4().hex
    log.error(
        "events not accepted, a record is too large for Kafka (request %s): %s", request_id, exc
    )
    return json_error(
        500,
        "record_too_large_for_kafka",
        "a record built from this request is larger than Kafka accepts (a collector bug, "
        "logged: quote the request_id); nothing may be counted as accepted and sending the "
        "same request again fails the same way",
        request_id=request_id,
    )


async def _read_body(request: web.Request, limit: int) -> bytes | BodyFault:
    """The body, or a fault: 413 as soon as it grows past ``limit`` (chunked and
    compressed bodies too: ``limit`` applies to the decompressed bytes), 400 when
    it cannot be read (a corrupt gzip/deflate body, a broken chunked encoding).

    A client's broken body is its fault, not ours: never a 500.
    """
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.content.iter_chunked(_READ_CHUNK):
            size += len(chunk)
            if size > limit:
                return too_large(f"more than {limit}", limit)
            chunks.append(chunk)
    except web.RequestPayloadError as exc:
        return _unreadable(request, exc)
    return b"".join(chunks)


def _unreadable(request: web.Request, exc: web.RequestPayloadError) -> BodyFault:
    encoding = request.headers.get("Content-Encoding")
    if isinstance(exc.__cause__, ContentEncodingError) or encoding:
        return BodyFault(
            400,
            "invalid_content_encoding",
            f"the body could not be decompressed as Content-Encoding {encoding!r}: send "
            "valid gzip or deflate, or an uncompressed body without Content-Encoding",
        )
    return BodyFault(
        400,
        "unreadable_body",
        "the request body could not be read (a broken chunked encoding or a body "
        "shorter than its Content-Length): send the request again",
    )


def _fault_response(fault: BodyFault) -> web.Response:
    extra: dict[str, Any] = {"path": fault.path}
    if fault.status == 422:
        extra.update(accepted=0, rejected=1, results=[])
    return json_error(fault.status, fault.error, fault.message, **extra)


async def post_events(request: web.Request) -> web.Response:
    collector = request.app[COLLECTOR]
    key = _authenticate(request, collector)
    if key is None:
        return _unauthorized()

    declared = content_length_fault(request.content_length, MAX_BODY_BYTES)
    if declared is not None:
        return _fault_response(declared)
    raw = await _read_body(request, MAX_BODY_BYTES)
    if isinstance(raw, BodyFault):
        return _fault_response(raw)

    parsed = parse_body(raw)
    if isinstance(parsed, BodyFault) and parsed.status == 413:
        return _fault_response(parsed)
    if not isinstance(parsed, BodyFault):
        forbidden = forbidden_channels(
            key,
            (
                (i, item.get("channel") if isinstance(item, dict) else None)
                for i, item in enumerate(parsed.items)
            ),
        )
        if forbidden:
            allowed = ", ".join(sorted(key.channels))
            return json_error(
                403,
                "channel_forbidden",
                f"API key {key.name!r} may send only channels {allowed}; "
                f"{len(forbidden)} event(s) use another channel, nothing was accepted",
                forbidden=forbidden,
            )

    now = collector.clock()
    events = 1 if isinstance(parsed, BodyFault) else len(parsed.items)
    decision = await collector.limiter.check(key.name, events, now.timestamp())
    if not decision.allowed:
        collector.metrics.count_rate_limited(key.name)
        if events > decision.limit:
            # No retry can ever pass: not a 429 (whose Retry-After invites one), a 413.
            return json_error(
                413,
                "batch_over_rate_limit",
                f"this request holds {events} events, more than the {decision.limit} "
                "events per minute allowed for this key: send smaller batches",
                limit=decision.limit,
            )
        return json_error(
            429,
            "rate_limited",
            f"API key {key.name!r} is over its limit of {decision.limit} events per "
            f"minute; retry after {decision.retry_after} s",
            headers={"Retry-After": str(decision.retry_after)},
            limit=decision.limit,
            retry_after=decision.retry_after,
        )

    try:
        if isinstance(parsed, BodyFault):
            return await _refuse_body(collector, key, parsed, raw)
        result = await ingest(
            parsed.items, parsed.raws, settings=collector.settings, send=collector.send, now=now
        )
    except (KafkaUnavailable, RecordTooLarge) as exc:
        if decision.count is not None:  # counted: nothing was accepted, so give it back
            await collector.limiter.give_back(key.name, events, now.timestamp())
        if isinstance(exc, KafkaUnavailable):
            return _kafka_down(exc)
        return _record_too_large(exc)
    collector.metrics.count_events(key.name, "accepted", result.accepted)
    collector.metrics.count_events(key.name, "rejected", result.rejected)
    if not parsed.batch and result.rejected:
        # A single event that failed answers like a batch of one, with the fault on top.
        only = result.body["results"][0]
        result.body.update(error=only["reason"], message=only["message"], path=only["path"])
    return json_response(result.status, result.body)


async def _refuse_body(
    collector: Collector, key: ApiKey, fault: BodyFault, raw: bytes
) -> web.Response:
    """A body that holds no events: to the DLQ when it is a record in its own right, then 422.

    Raises :class:`KafkaUnavailable` / :class:`RecordTooLarge` like :func:`ingest`, so the
    caller answers (and gives the rate budget back) the same way.
    """
    if fault.error in _DLQ_BODY_FAULTS:
        rejection = Rejection(fault.error, fault.message, fault.path, raw)
        record = dlq_out(rejection, None, settings=collector.settings, now=collector.clock())
        await collector.send([record])
        collector.metrics.count_events(key.name, "rejected", 1)
    return _fault_response(fault)


async def get_experience(request: web.Request) -> web.Response:
    collector = request.app[COLLECTOR]
    key = _authenticate(request, collector)
    if key is None:
        return _unauthorized()
    if not key.reads_scores:
        return json_error(
            403,
            "read_forbidden",
            f"API key {key.name!r} may only send events; reading scores needs a key "
            "allowed every channel ('*'), such as the CRM's",
        )
    customer_id = request.match_info["id"]
    if not 0 < len(customer_id) <= MAX_CUSTOMER_ID:
        return _not_found()
    found = await collector.reader.lookup(customer_id)
    if isinstance(found, Found):
        return json_response(200, found.snapshot, headers={"X-Touchpoint-Source": found.source})
    if isinstance(found, NotFound):
        return _not_found()
    log.warning("experience lookup unavailable: %s", found.why)
    return json_error(
        503,
        "unavailable",
        "the score is not in Redis and no worker could be asked; retry shortly",
        headers={"Retry-After": KAFKA_RETRY_AFTER},
    )


def _not_found() -> web.Response:
    return json_error(404, "not_found", "no experience is known for this customer")


async def healthz(request: web.Request) -> web.Response:
    """The process is alive and serving (no dependency checked)."""
    return json_response(200, {"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Ready when Kafka answers a metadata request; Redis is reported, not required.

    Both checks run at once, so the answer takes at most READY_TIMEOUT_SECONDS
    (a probe's timeout must exceed it; see deploy/kubernetes), not twice that.
    """
    collector = request.app[COLLECTOR]
    kafka, redis = await asyncio.gather(_kafka_check(collector), _redis_check(collector))
    ready = kafka == "ok"
    # Same shape as the worker's /readyz, so one probe parser reads both.
    body = {"status": "ready" if ready else "not_ready", "checks": {"kafka": kafka, "redis": redis}}
    return json_response(200 if ready else 503, body)


async def _kafka_check(collector: Collector) -> str:
    if collector.kafka_ready is None:
        return "no Kafka producer configured"
    try:
        await asyncio.wait_for(collector.kafka_ready(), timeout=READY_TIMEOUT_SECONDS)
    except (KafkaUnavailable, TimeoutError) as exc:
        return str(exc) or "Kafka metadata request timed out"
    return "ok"


async def _redis_check(collector: Collector) -> str:
    if collector.redis_ping is None:
        return "no Redis configured"
    try:
        await asyncio.wait_for(collector.redis_ping(), timeout=READY_TIMEOUT_SECONDS)
    except Exception as exc:  # noqa: BLE001 (any failure is only reported: Redis is not required)
        return f"unavailable ({type(exc).__name__}); rate limits fail open"
    return "ok"


async def metrics(request: web.Request) -> web.Response:
    registry = request.app[COLLECTOR].registry
    return web.Response(
        body=generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
    )
