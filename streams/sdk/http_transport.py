"""HTTP mode: batches POSTed to the collector, split to fit its limits.

Only the standard library (``urllib``) is used. The collector takes at most
:data:`~streams.collector.body.MAX_EVENTS` events and
:data:`~streams.collector.body.MAX_BODY_BYTES` bytes per request and refuses a
larger request whole (413), so :class:`HttpTransport` splits a batch into as
many requests as it takes.
"""

from __future__ import annotations

import email.utils
import http.client
import json
import math
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from datetime import UTC, datetime
from email.message import Message
from typing import Any, Final

from streams.collector.body import MAX_BODY_BYTES, MAX_EVENTS
from streams.errors import ConfigError, ValidationError
from streams.sdk.encoding import encode_event
from streams.sdk.outcomes import (
    Event,
    Refusal,
    RejectedDeliveryError,
    RetryableDeliveryError,
    SendResult,
    UnconfirmedDeliveryError,
)

USER_AGENT = "touchpoint-sdk-python/0.1"
# The collector answers only once Kafka has acknowledged a request's events, and waits up
# to 15 s for that before answering 503 (REQUEST_TIMEOUT_MS in streams/collector/producer.py;
# not imported: that module loads aiokafka). A client that gave up sooner would retry events
# the collector may still make durable, and could report RetriesExhaustedError for events
# that did arrive. 20 s leaves time for the collector's verdict to come back.
DEFAULT_TIMEOUT: Final = 20.0
_HEAD: Final = b'{"events":['
_TAIL: Final = b"]}"
_ENVELOPE: Final = len(_HEAD) + len(_TAIL)

Encoded = tuple[int, bytes]  # (index in the batch, the event's JSON)


def split_requests(
    encoded: Sequence[Encoded], *, max_events: int, max_body_bytes: int
) -> list[list[Encoded]]:
    """Consecutive runs of events, each a request of <= max_events and <= max_body_bytes.

    Every event must fit a request on its own (the caller refuses the others).
    Order is kept, so a customer's events still arrive in order.
    """
    requests: list[list[Encoded]] = []
    current: list[Encoded] = []
    size = _ENVELOPE
    for item in encoded:
        grown = size + len(item[1]) + (1 if current else 0)  # a comma between events
        if current and (len(current) >= max_events or grown > max_body_bytes):
            requests.append(current)
            current, grown = [], _ENVELOPE + len(item[1])
        current.append(item)
        size = grown
    if current:
        requests.append(current)
    return requests


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Never follow a redirect: urllib would turn a POST after 301/302/303 into a GET
    without the events (the collector then answers 405) and refuses 307/308 for POST
    anyway. A 3xx is reported with its ``Location`` instead, so the URL can be fixed."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def _opener() -> urllib.request.OpenerDirector:
    return urllib.request.build_opener(_NoRedirect())


def request_body(items: Sequence[Encoded]) -> bytes:
    """``{"events": [...]}`` from events already encoded one by one."""
    return _HEAD + b",".join(data for _, data in items) + _TAIL


class HttpTransport:
    """POSTs ``{"events": [...]}`` to ``{base_url}/v1/events`` with header ``X-API-Key``.

    Each event is encoded on its own: one that cannot be encoded is refused
    alone. A batch goes as one request or, above ``max_events`` events or
    ``max_body_bytes`` bytes (the collector's limits), as several.

    Answers: 2xx with per-event ``results`` (rejected ones become refusals); a
    2xx without them (not the collector's JSON, e.g. a proxy's HTML page), 429,
    5xx, connection errors and errors while reading the answer (truncated body,
    reset, TLS error, timeout) are retryable (``Retry-After`` honoured):
    that request's events and those of the requests not yet sent are retried;
    any other 4xx is final for that request's events, per event when the body
    has ``results`` (a 401 also for the requests not yet sent: same key).
    Redirects are not followed: a 3xx is final too, its error names the
    ``Location`` (a POST urllib follows would arrive as a GET without events).
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        path: str = "/v1/events",
        max_events: int = MAX_EVENTS,
        max_body_bytes: int = MAX_BODY_BYTES,
    ) -> None:
        parsed = urllib.parse.urlsplit(base_url)
        if parsed.scheme not in {"http", "https"} or not parsed.netloc:
            raise ConfigError(
                f"collector URL {base_url!r} must look like http://host:port or https://host"
            )
        if not api_key:
            raise ConfigError("no collector API key given: pass api_key='<secret>'")
        if not 1 <= max_events <= MAX_EVENTS or not _ENVELOPE < max_body_bytes <= MAX_BODY_BYTES:
            raise ConfigError(
                f"max_events must be 1..{MAX_EVENTS} and max_body_bytes "
                f"{_ENVELOPE + 1}..{MAX_BODY_BYTES} (the collector's limits), got "
                f"{max_events} and {max_body_bytes}"
            )
        self.url = base_url.rstrip("/") + path
        self._api_key = api_key
        self.timeout = timeout
        self.max_events = max_events
        self.max_body_bytes = max_body_bytes
        self._opener = _opener()

    def __call__(self, batch: list[Event]) -> SendResult:
        result = SendResult()
        encoded: list[Encoded] = []
        for index, event in enumerate(batch):
            data = encode_event(event)
            if isinstance(data, ValidationError):
                result.refused.append(Refusal(index, data))
            elif _ENVELOPE + len(data) > self.max_body_bytes:
                result.refused.append(Refusal(index, self._too_large(len(data))))
            else:
                encoded.append((index, data))
        requests = split_requests(
            encoded, max_events=self.max_events, max_body_bytes=self.max_body_bytes
        )
        for number, items in enumerate(requests):
            indexes = [index for index, _ in items]
            try:
                answer = self._post(request_body(items), len(items))
            except RetryableDeliveryError as exc:
                # The collector is failing now: retry this request's events and the rest later.
                result.retry.extend(i for later in requests[number:] for i, _ in later)
                result.retry_error = exc
                break
            except RejectedDeliveryError as exc:
                final = requests[number:] if exc.status == 401 else [items]
                result.refused.extend(Refusal(i, exc) for group in final for i, _ in group)
                if exc.status == 401:
                    break
                continue
            result.refused.extend(Refusal(indexes[r.index], r.error) for r in answer.refused)
        return result

    def _too_large(self, size: int) -> ValidationError:
        return ValidationError(
            "record_too_large",
            f"the event is {size} bytes as JSON; a request to the collector holds at most "
            f"{self.max_body_bytes} bytes: send less text",
            "$",
        )

    def _post(self, data: bytes, count: int) -> SendResult:
        """One request of ``count`` events: per-event refusals, or raise for the whole request."""
        request = urllib.request.Request(  # noqa: S310 - scheme checked in __init__
            self.url,
            data=data,
            method="POST",
            headers={
                "Content-Type": "application/json",
                "Accept": "application/json",
                "X-API-Key": self._api_key,
                "User-Agent": USER_AGENT,
            },
        )
        status, body, headers = self._exchange(request)
        if 200 <= status < 300:
            parsed = _json(body)
            if not (isinstance(parsed, dict) and isinstance(parsed.get("results"), list)):
                # Not the collector talking (a proxy's or captive portal's page, say): no
                # event is known to have arrived. Sending again is safe, as the workers
                # ignore a repeated event_id.
                raise RetryableDeliveryError(
                    f"collector at {self.url} answered {status} with "
                    f"{_received(body, headers)} instead of its JSON results: is a proxy "
                    "or captive portal in the way? Check the collector URL"
                )
            return _results(parsed, count, status=status, summary=_summary(body))
        if status == 429 or status >= 500:
            raise RetryableDeliveryError(
                f"collector at {self.url} answered {status}: {_summary(body)}",
                retry_after=parse_retry_after(headers.get("Retry-After")),
            )
        parsed = _json(body)
        if isinstance(parsed, dict) and isinstance(parsed.get("results"), list):
            return _results(parsed, count, status=status, summary=_summary(body))
        if 300 <= status < 400:
            raise RejectedDeliveryError(
                f"collector at {self.url} answered {status} redirecting to "
                f"{headers.get('Location') or '(no Location)'}: redirects are not followed "
                "(the events would be lost or sent twice); use the final URL as the "
                "collector URL (https?)",
                status=status,
            )
        raise RejectedDeliveryError(
            f"collector at {self.url} answered {status}: {_summary(body)}{_hint(status)}",
            status=status,
        )

    def _exchange(self, request: urllib.request.Request) -> tuple[int, bytes, Message]:
        """Status, body and headers of one request; any transport failure is retryable.

        The connection can fail while the answer is read, too: a truncated body
        (``IncompleteRead``), a garbled status line (``BadStatusLine``), a reset,
        a TLS error or a timeout. None of these says the events were refused, so
        they are retried like a refused connection.
        """
        try:
            try:
                with self._opener.open(request, timeout=self.timeout) as response:
                    return response.status, response.read(), response.headers
            except urllib.error.HTTPError as exc:  # a non-2xx answer; its body is read here
                with exc:
                    return exc.code, exc.read(), exc.headers
        except urllib.error.URLError as exc:  # before any answer: refused, DNS, TLS handshake
            raise RetryableDeliveryError(
                f"collector not reachable at {self.url} ({exc.reason}): is `touchpoint "
                "collector` running?"
            ) from exc
        except TimeoutError as exc:
            raise RetryableDeliveryError(
                f"collector at {self.url} did not answer within {self.timeout:g}s: retrying"
            ) from exc
        except (http.client.HTTPException, OSError) as exc:  # incl. ssl.SSLError, resets
            raise RetryableDeliveryError(
                f"collector at {self.url} broke off its answer ({type(exc).__name__}: {exc}): "
                "retrying"
            ) from exc

    def close(self, timeout: float | None = None) -> None:
        """Nothing to release: each request opens its own connection."""


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


def _received(body: bytes, headers: Message) -> str:
    """What came back, for an error message: its content type and how it starts."""
    kind = headers.get("Content-Type") or "no Content-Type"
    text = body.decode("utf-8", "replace").strip()
    if not text:
        return f"an empty body ({kind})"
    more = "..." if len(text) > 120 else ""
    return f"a {kind} body {text[:120]!r}{more}"


def _hint(status: int) -> str:
    if status in (401, 403):
        return " (check the API key sent as X-API-Key and the channels it may send)"
    if status == 413:
        return " (request over the collector's limits: lower batch_size)"
    return ""


def _results(body: Any, count: int, *, status: int, summary: str = "") -> SendResult:
    """Per-event answers; events the server did not mention are never counted delivered.

    On a 2xx they fail with :class:`UnconfirmedDeliveryError` (fate unknown), on
    a 4xx with :class:`RejectedDeliveryError`; one error object per request, so
    they reach ``on_failure`` in one call.
    """
    result = SendResult()
    results = body.get("results") if isinstance(body, dict) else None
    if not isinstance(results, list):  # callers pass only answers holding a results list
        return result
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
                        str(item.get("reason") or "rejected"),
                        str(item.get("message") or "the collector rejected the event"),
                        str(item.get("path") or "$"),
                    ),
                )
            )
    missing = [index for index in range(count) if index not in seen]
    if missing:
        error = _missing_results_error(status, len(missing), count, summary)
        result.refused.extend(Refusal(index, error) for index in missing)
    return result


def _missing_results_error(status: int, missing: int, count: int, summary: str) -> Exception:
    if 200 <= status < 300:
        return UnconfirmedDeliveryError(
            f"collector answered {status} without a result for {missing} of {count} event(s): "
            "whether they arrived is unknown (a 2xx means the collector wrote every event of "
            "the request to Kafka, so they most likely did; is a proxy rewriting answers?). "
            "Not retried; send them again with the same event_id if they must arrive"
        )
    return RejectedDeliveryError(
        f"collector answered {status} without a result for {missing} of {count} event(s): "
        f"{summary or '(no detail)'}",
        status=status,
    )


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
