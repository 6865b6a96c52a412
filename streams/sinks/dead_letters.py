"""Reviewing and re-driving the DLQ: what was rejected, why, and sending it back once fixed.

Pure functions over DLQ records already read from Kafka (``streams.cli.dlq_cmd`` does
the reading and sending). A DLQ record (schemas/dlq-record.v1.schema.json) carries the
original bytes, so nothing a producer sent is lost; this module turns such records into
:class:`DeadLetter` values, selects them (reason, source, path, time), counts them, and
decides which can be re-driven: sent again, byte for byte, to the topic they were first
sent to.

A record is re-driven only if it would now be accepted: its original is complete (not
cut to the DLQ's 64 KiB), its topic is one of this deployment's input topics, and the
codec accepts it now (a worker-side ``processing_error`` or ``state_unreadable``, or an
``occurred_at_in_future`` whose time has come). Sending one that would be rejected again
would only put it back in the DLQ; those are counted by the reason they would get. A
re-driven record carries the header ``touchpoint-redriven-from: <dlq topic>:<partition>:
<offset>`` so it can be traced, and is keyed by its customer id as the contract says.

One run sends each original at most once per topic: the DLQ may hold the same bytes
several times (a producer's retry, or a record re-driven before the fix that failed
again), and sending every copy would double them in the DLQ at each run while the fault
lasts. The DLQ keeps what was re-driven, so a second run sends events and outcomes again. For
events that is harmless (the engine ignores a repeated ``event_id``), and for outcomes
nearly so (a repeated outcome changes no state, but counts again in
``cx_outcomes_total``). An erasure sent again would erase the customer again, including
what the worker learnt since the first time, so an erasure whose bytes are already on the
erasure topic with the re-drive header (:class:`ErasureHistory`) is not sent again,
unless asked (``--again``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from streams.codec import decode_erasure, decode_event, decode_outcome
from streams.codec.timestamps import parse_rfc3339
from streams.codec.types import Rejection
from streams.settings import Settings
from streams.sinks.topic_reader import TopicRecord

REDRIVEN_HEADER = "touchpoint-redriven-from"
TOP_PATHS = 5  # paths listed per reason in the stats

Decoder = Callable[[bytes], object]


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One DLQ record, with where it sits in the DLQ and its original bytes decoded."""

    partition: int
    offset: int
    reason: str
    message: str
    path: str
    source: str
    topic: str
    key: str | None
    original: bytes
    truncated: bool
    rejected_at: float  # epoch seconds
    record: dict[str, Any]  # the DLQ record as read


def parse(record: TopicRecord) -> DeadLetter | None:
    """The dead letter in a DLQ topic record, or None when it is not a DLQ record v1."""
    try:
        data = orjson.loads(record.value or b"")
    except orjson.JSONDecodeError:
        return None
    if not isinstance(data, dict):
        return None
    texts = [data.get(name) for name in ("reason", "message", "path", "source", "topic")]
    encoded, rejected_at = data.get("original_base64"), data.get("rejected_at")
    if not all(isinstance(t, str) for t in texts) or not isinstance(encoded, str):
        return None
    when = parse_rfc3339(rejected_at) if isinstance(rejected_at, str) else None
    key = data.get("key")
    if when is None or not (key is None or isinstance(key, str)):
        return None
    try:
        original = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        return None
    reason, message, path, source, topic = (str(t) for t in texts)
    return DeadLetter(record.partition, record.offset, reason, message, path, source, topic,
                      key, original, data.get("truncated") is True, when, data)  # fmt: skip


@dataclass(frozen=True)
class Selection:
    """Which dead letters a command looks at; an empty set means any."""

    reasons: frozenset[str] = frozenset()
    sources: frozenset[str] = frozenset()
    path_prefix: str | None = None
    since: float | None = None  # rejected_at >= since (epoch seconds)
    until: float | None = None  # rejected_at < until

    def matches(self, letter: DeadLetter) -> bool:
        return (
            (not self.reasons or letter.reason in self.reasons)
            and (not self.sources or letter.source in self.sources)
            and (self.path_prefix is None or letter.path.startswith(self.path_prefix))
            and (self.since is None or letter.rejected_at >= self.since)
            and (self.until is None or letter.rejected_at < self.until)
        )


@dataclass
class DlqStats:
    """Counts of the selected dead letters: by reason, source, original topic and path."""

    read: int = 0
    unreadable: int = 0
    selected: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    sources: Counter[str] = field(default_factory=Counter)
    topics: Counter[str] = field(default_factory=Counter)
    paths: dict[str, Counter[str]] = field(default_factory=dict)
    first: float | None = None
    last: float | None = None

    def add(self, letter: DeadLetter) -> None:
        self.selected += 1
        self.reasons[letter.reason] += 1
        self.sources[letter.source] += 1
        self.topics[letter.topic] += 1
        self.paths.setdefault(letter.reason, Counter())[letter.path] += 1
        if self.first is None or letter.rejected_at < self.first:
            self.first = letter.rejected_at
        if self.last is None or letter.rejected_at > self.last:
            self.last = letter.rejected_at

    def lines(self) -> list[str]:
        from streams.engine.state import rfc3339

        out = [f"{self.read} DLQ records read, {self.selected} selected, "
               f"{self.unreadable} not DLQ records v1"]  # fmt: skip
        if self.first is not None and self.last is not None:
            out.append(f"rejected from {rfc3339(self.first)} to {rfc3339(self.last)}")
        for title, counts in (("source", self.sources), ("topic", self.topics)):
            if counts:
                out.append(f"by {title}: " + ", ".join(f"{k} {n}" for k, n in _ranked(counts)))
        if self.reasons:
            out.append("by reason (top paths):")
        for reason, n in _ranked(self.reasons):
            paths = _ranked(self.paths[reason])
            shown = ", ".join(f"{p} {c}" for p, c in paths[:TOP_PATHS])
            more = f", {len(paths) - TOP_PATHS} more" if len(paths) > TOP_PATHS else ""
            out.append(f"  {reason:<26} {n:>8}   {shown}{more}")
        return out


def collect(letters: Iterable[TopicRecord], selection: Selection) -> DlqStats:
    """Read every record, count the unreadable ones and the selected dead letters."""
    stats = DlqStats()
    for record in letters:
        stats.read += 1
        letter = parse(record)
        if letter is None:
            stats.unreadable += 1
        elif selection.matches(letter):
            stats.add(letter)
    return stats


@dataclass(frozen=True, slots=True)
class Send:
    """A record to send again: to ``topic``, keyed by customer id, with the trace header."""

    topic: str
    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]]
    at: float = 0.0  # the record's own time (occurred_at / requested_at), epoch seconds


def decoders(settings: Settings, now: float) -> dict[str, Decoder]:
    """The codec for each input topic a dead letter may be re-driven to."""
    skew = settings.max_future_skew_seconds
    return {
        settings.touchpoints_topic: lambda raw: decode_event(raw, now=now, max_future_skew=skew),
        settings.outcomes_topic: decode_outcome,
        settings.erasure_topic: decode_erasure,
    }


def plan(letter: DeadLetter, codecs: dict[str, Decoder], dlq_topic: str) -> Send | str:
    """What re-driving ``letter`` would do: a :class:`Send`, or why it is skipped
    (``truncated``, ``other_topic``, or ``still_invalid:<reason it would get now>``)."""
    if letter.truncated:
        return "truncated"
    decode = codecs.get(letter.topic)
    if decode is None:
        return "other_topic"
    decoded = decode(letter.original)
    if isinstance(decoded, Rejection):
        return f"still_invalid:{decoded.reason}"
    customer_id: str = decoded.customer_id  # type: ignore[attr-defined]
    at: float = decoded.ts  # type: ignore[attr-defined]
    trace = f"{dlq_topic}:{letter.partition}:{letter.offset}".encode()
    return Send(letter.topic, customer_id.encode(), letter.original, [(REDRIVEN_HEADER, trace)], at)


def sent_digest(topic: str, value: bytes) -> bytes:
    """What identifies a record a re-drive sends: its topic and its exact bytes."""
    return hashlib.blake2b(topic.encode() + b"\0" + value, digest_size=16).digest()


@dataclass
class ErasureHistory:
    """What the erasure topic tells a re-drive.

    ``erased``: customer id -> time of its newest erasure request (records that are not
    valid erasure requests are ignored: the worker ignored them too). ``redriven``: the
    :func:`sent_digest` of every erasure an earlier re-drive sent (it carries the
    :data:`REDRIVEN_HEADER`).
    """

    erased: dict[str, float] = field(default_factory=dict)
    redriven: set[bytes] = field(default_factory=set)

    @classmethod
    def read(cls, records: Iterable[TopicRecord], topic: str) -> ErasureHistory:
        history = cls()
        erased = history.erased
        for record in records:
            value = record.value or b""
            request = decode_erasure(value)
            if isinstance(request, Rejection):
                continue
            if request.ts > erased.get(request.customer_id, float("-inf")):
                erased[request.customer_id] = request.ts
            if any(name == REDRIVEN_HEADER for name, _ in record.headers):
                history.redriven.add(sent_digest(topic, value))
        return history


class RedrivePlanner:
    """Decides, record by record, what a re-drive sends (see the module docstring): the
    selected dead letters the codec accepts now, each original once per topic, at most
    ``limit`` (0: no limit). Keeps only a 16-byte digest per record sent, never the
    records, so a re-drive of a large DLQ can send as it reads."""

    def __init__(
        self,
        codecs: dict[str, Decoder],
        dlq_topic: str,
        selection: Selection,
        limit: int = 0,
        erasures: ErasureHistory | None = None,
        *,
        again: bool = False,
    ) -> None:
        self.codecs = codecs
        self.dlq_topic = dlq_topic
        self.selection = selection
        self.limit = limit
        history = erasures or ErasureHistory()
        self.erased: Mapping[str, float] = history.erased
        # Erasures an earlier re-drive sent: sent again only when asked (``again``).
        self.redriven: set[bytes] = set() if again else history.redriven
        self._erasure_topic = next(
            (topic for topic, decode in codecs.items() if decode is decode_erasure), None
        )
        self.report = RedriveReport()
        self._sent: set[bytes] = set()

    def take(self, record: TopicRecord) -> Send | None:
        """The record to send for this DLQ record, or None (counted in :attr:`report`)."""
        report = self.report
        report.read += 1
        letter = parse(record)
        if letter is None:
            report.unreadable += 1
            return None
        if not self.selection.matches(letter):
            return None
        outcome = plan(letter, self.codecs, self.dlq_topic)
        if isinstance(outcome, str):
            report.skipped[outcome] += 1
            return None
        # An event or outcome about a customer erased at or after its time must not bring
        # the customer back. Erasures themselves always go: erasing is the safe direction.
        erased_at = self.erased.get(outcome.key.decode())
        if (
            outcome.topic != self._erasure_topic
            and erased_at is not None
            and (erased_at >= outcome.at)
        ):
            report.skipped["erased"] += 1
            return None
        digest = sent_digest(outcome.topic, outcome.value)
        if digest in self.redriven:
            report.skipped["already_redriven"] += 1
            return None
        if digest in self._sent:
            report.skipped["repeat"] += 1
            return None
        if self.limit and len(self._sent) >= self.limit:
            report.skipped["over_limit"] += 1
            return None
        self._sent.add(digest)
        report.sent[letter.reason] += 1
        return outcome


@dataclass
class RedriveReport:
    """What a re-drive sent (by the reason it had been rejected for) and skipped (by cause)."""

    read: int = 0
    unreadable: int = 0
    sent: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)

    def lines(self, *, dry_run: bool) -> list[str]:
        verb = "would send" if dry_run else "sent"
        out = [f"{self.read} DLQ records read ({self.unreadable} not DLQ records v1): "
               f"{verb} {sum(self.sent.values())}, skipped {sum(self.skipped.values())}"]  # fmt: skip
        for reason, n in _ranked(self.sent):
            out.append(f"  {verb:<10} {n:>8}  rejected as {reason}")
        for cause, n in _ranked(self.skipped):
            out.append(f"  {'skipped':<10} {n:>8}  {_skip_text(cause)}")
        return out


def _skip_text(cause: str) -> str:
    if cause == "truncated":
        return "original over 64 KiB, cut in the DLQ: have the producer send it again"
    if cause == "over_limit":
        return "past --limit: run again to send them"
    if cause == "erased":
        return "about a customer erased since: not sent (it would bring the customer back)"
    if cause == "already_redriven":
        return (
            "erasure an earlier re-drive sent: not sent again (it would also erase what was "
            "learnt since); --again sends it"
        )
    if cause == "repeat":
        return "same original as a record sent in this run: sent once"
    if cause == "other_topic":
        return "first sent to a topic re-drive does not send to (only events, outcomes, erasures)"
    reason = cause.removeprefix("still_invalid:")
    return f"would be rejected again as {reason}: fix the producer, which sends it again"


def _ranked(counts: Counter[str]) -> list[tuple[str, int]]:
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
