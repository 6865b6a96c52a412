"""Per-customer state: decayed sums, de-duplication memory, journeys, alert bookkeeping.

Everything is bounded by the caps in the rules file. :meth:`CustomerState.to_bytes`
writes a compact versioned binary record (format v2, see ``streams.engine.codec``);
:meth:`CustomerState.from_bytes` reads v2 and upgrades v1 and v0 (the JSON forms of
earlier releases).
"""

from __future__ import annotations

from binascii import crc_hqx
from datetime import UTC, datetime
from math import exp
from typing import Final
from zlib import crc32

from streams.codec.types import CHANNELS, JOURNEY_STATUSES, JOURNEY_TYPES

STATE_VERSION: Final = 2
ID_KEY_BITS: Final = 48  # event-id keys: see docs/scoring.md for the collision trade-off
N_SUMS: Final = 17  # 4 dimensions x (short vw, short w, long vw, long w) + negative evidence
NEG: Final = 16  # index of the short-decayed negative evidence in CustomerState.acc
NEG_INF: Final = float("-inf")
CHANNEL_INDEX: Final = {c: i for i, c in enumerate(CHANNELS)}
JOURNEY_TYPE_INDEX: Final = {t: i for i, t in enumerate(JOURNEY_TYPES)}
STATUS_INDEX: Final = {s: i for i, s in enumerate(JOURNEY_STATUSES)}


def id_key(event_id: str) -> int:
    """A stable 48-bit key of an event (or journey) id: CRC-32 and CRC-16-CCITT.

    Two CRCs with different generator polynomials, so ids that differ in a short burst
    never collide and random ids collide with chance ~2^-48. Stable across processes
    and releases (Python's ``hash()`` is salted per process), and ~4x cheaper than a
    blake2b digest. Not meant to resist deliberately crafted collisions.
    """
    data = event_id.encode()
    return crc32(data) | crc_hqx(data, 0xFFFF) << 32


def rule_key(rule_name: str) -> int:
    """The 24-bit key that stands for a rule name in stored alert reasons (a collision
    within one rules file is refused at load: see plan.rules_by_key)."""
    return crc32(rule_name.encode()) & 0xFFFFFF


def rfc3339(ts: float) -> str:
    """Epoch seconds as RFC 3339 UTC with milliseconds when they are not zero."""
    ms = round(ts * 1000)
    sec, milli = divmod(ms, 1000)
    base = datetime.fromtimestamp(sec, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{base}.{milli:03d}Z" if milli else f"{base}Z"


def canonical(ts: float) -> float:
    """A time rounded to whole milliseconds: bookkeeping times are kept canonical so they
    survive the integer-millisecond encoding exactly (a restored state behaves the same)."""
    return round(ts * 1000) / 1000


class JourneyState:
    """One open journey. ``status`` is that of the newest step (order-independent).

    ``last`` is the newest step's time, which is also the time of the step that set
    ``status`` (so v1's separate ``status_ts`` is gone).
    """

    __slots__ = (
        "id", "type", "status", "start", "last", "deadline", "attempts", "failed",
        "contacts", "contact_ts", "stalled",
    )  # fmt: skip

    def __init__(self, jid: str, jtype: str, status: str, ts: float, deadline: float) -> None:
        self.id = jid
        self.type = jtype
        self.status = status
        self.start = ts
        self.last = ts
        self.deadline = deadline
        self.attempts = 0  # max of metrics.attempts seen
        self.failed = 0  # failed steps seen
        self.contacts = 0
        self.contact_ts: list[float] = []  # newest contact times, sorted, at most repeat count
        self.stalled = False  # a journey_stalled alert was raised (check_stalled)

    @property
    def attempt_count(self) -> int:
        return max(self.attempts, self.failed)


# A recent rule firing with negative signals, the raw material of alert reasons:
# (event_id, channel, type, event time, rule key). The rule's negative signals give the
# dimensions and impacts when an alert is built. A plain tuple: built on the hot path.
Contribution = tuple[str, str, str, float, int]


AWAITING, CONTACTED, RECOVERED = 0, 1, 2  # OpenAlert.stage


class OpenAlert:
    """An alert awaiting an outcome (:data:`AWAITING`), after outreach awaiting recovery
    (:data:`CONTACTED`), or recovered but still open to a ``resolved`` (:data:`RECOVERED`)."""

    __slots__ = ("alert_id", "trigger", "detected", "stage")

    def __init__(self, alert_id: str, trigger: int, detected: float, stage: int = 0) -> None:
        self.alert_id = alert_id
        self.trigger = trigger
        self.detected = detected
        self.stage = stage


class CustomerState:
    """Everything the engine remembers about one customer (see the module doc).

    The decayed sums are kept *anchored*: ``acc[i] = sum x * exp(rate * (t - anchor))``
    for a fixed ``anchor`` time, so an event only adds to them (no rebase of every sum
    per event). The value at the newest event time ``ref`` is ``acc[i] / F`` with
    ``F = exp(rate * (ref - anchor))`` (``short_f``/``long_f``, cached). The anchor
    moves (and the sums are rescaled) only when F would grow too large.
    """

    __slots__ = (
        "customer_id", "tier", "tier_ts", "ref", "anchor", "acc", "short_f", "long_f",
        "n_events", "ids", "id_floor", "journeys", "closed", "last_alert", "below_active",
        "cleared", "open_alerts", "reasons", "survey_ts", "survey_detractor", "complaint_ts",
        "complaint_resolved_ts",
    )  # fmt: skip

    def __init__(self, customer_id: str) -> None:
        self.customer_id = customer_id
        self.tier: str | None = None  # None: the default tier
        self.tier_ts = NEG_INF  # time of the newest event that carried a tier
        self.ref = NEG_INF  # newest event time
        self.anchor = NEG_INF  # time the sums are anchored to (set by the first event)
        # per dimension d: [4d] short sum(v*w), [4d+1] short sum(w), [4d+2]/[4d+3] long;
        # [16] short sum(-v*w) of negative signals (recent negative evidence)
        self.acc: list[float] = [0.0] * N_SUMS
        self.short_f = 0.0  # exp(short_rate * (ref - anchor)); 0.0 = not computed yet
        self.long_f = 0.0
        self.n_events = 0
        self.ids: dict[int, float] = {}  # event-id key -> event time, insertion order
        self.id_floor = NEG_INF  # newest time of an evicted id: older unknown ids are refused
        self.journeys: dict[str, JourneyState] = {}
        self.closed: dict[int, None] = {}  # id keys of completed journeys (tombstones)
        self.last_alert: dict[int, tuple[float, int]] = {}  # trigger -> (event time, severity)
        self.below_active = False  # hysteresis of below_expectation
        self.cleared: dict[int, float] = {}  # trigger -> time of a "resolved" outcome
        self.open_alerts: list[OpenAlert] = []
        self.reasons: list[Contribution] = []
        self.survey_ts = NEG_INF  # newest survey with nps or csat
        self.survey_detractor = False
        self.complaint_ts = NEG_INF
        self.complaint_resolved_ts = NEG_INF

    def sums_at_ref(self, short_rate: float, long_rate: float) -> list[float]:
        """The 17 decayed sums referred to the newest event time (the v1 layout + NEG)."""
        if self.anchor == NEG_INF:
            return [0.0] * N_SUMS
        fs, fl = self.factors(short_rate, long_rate)
        a = self.acc
        return [a[i] / (fl if i % 4 >= 2 and i < NEG else fs) for i in range(N_SUMS)]

    def factors(self, short_rate: float, long_rate: float) -> tuple[float, float]:
        """(short F, long F) at ``ref``, computed once after a restore and then cached."""
        if self.short_f == 0.0:
            dt = self.ref - self.anchor if self.anchor != NEG_INF else 0.0
            self.short_f = exp(short_rate * dt)
            self.long_f = exp(long_rate * dt)
        return self.short_f, self.long_f

    # ------------------------------------------------------------------ serialization
    def to_bytes(self) -> bytes:
        """Compact versioned binary encoding (format v2, see streams.engine.codec)."""
        from streams.engine.codec import encode_state

        return encode_state(self)

    @classmethod
    def from_bytes(cls, data: bytes) -> CustomerState:
        """Decode any known version, upgrading older ones; raises StateError otherwise."""
        from streams.engine.codec import decode_state

        return decode_state(data)
