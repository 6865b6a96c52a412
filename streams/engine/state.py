"""Per-customer state: decayed sums, de-duplication memory, journeys, alert bookkeeping.

Everything is bounded by the caps in the rules file. :meth:`CustomerState.to_bytes`
writes a compact, versioned orjson array (format v1, see ``_encode``); binary parts
(the 16 decayed sums, the event-id digests) are packed with ``struct`` and base85
(base85's alphabet has no ``"`` or ``\\``, so it is JSON-safe). :meth:`from_bytes`
reads v1 and upgrades v0 (the first, verbose dict format).
"""

from __future__ import annotations

import base64
import hashlib
import math
import struct
from datetime import UTC, datetime
from typing import Any, Final

import orjson

from streams.codec.types import CHANNELS, JOURNEY_STATUSES, JOURNEY_TYPES
from streams.engine.config import DIMENSIONS
from streams.errors import StateError

STATE_VERSION: Final = 1
ID_DIGEST_BYTES: Final = 6  # 48-bit event-id digests: see docs/scoring.md for the trade-off
_MAX_AGE_MINUTES: Final = 0xFFFF  # ~45 days; older ids are saturated (conservative, see below)
_SUMS: Final = struct.Struct("<16d")
_ID_AGE: Final = struct.Struct("<H")
NEG_INF: Final = float("-inf")
CHANNEL_INDEX: Final = {c: i for i, c in enumerate(CHANNELS)}
JOURNEY_TYPE_INDEX: Final = {t: i for i, t in enumerate(JOURNEY_TYPES)}
STATUS_INDEX: Final = {s: i for i, s in enumerate(JOURNEY_STATUSES)}


def digest(text: str) -> bytes:
    """A short stable digest of an event or journey id (blake2b, 6 bytes)."""
    return hashlib.blake2b(text.encode(), digest_size=ID_DIGEST_BYTES).digest()


def rfc3339(ts: float) -> str:
    """Epoch seconds as RFC 3339 UTC with milliseconds when they are not zero."""
    ms = round(ts * 1000)
    sec, milli = divmod(ms, 1000)
    base = datetime.fromtimestamp(sec, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{base}.{milli:03d}Z" if milli else f"{base}Z"


class JourneyState:
    """One open journey. ``status`` is that of the newest step (order-independent)."""

    __slots__ = (
        "id", "type", "status", "status_ts", "start", "last", "deadline",
        "attempts", "failed", "contacts", "contact_ts", "stalled",
    )  # fmt: skip

    def __init__(self, jid: str, jtype: str, status: str, ts: float, deadline: float) -> None:
        self.id = jid
        self.type = jtype
        self.status = status
        self.status_ts = ts
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


# A recent negative signal contribution, the raw material of alert reasons:
# (event_id, channel, type, dimension index, value*weight, event time, rule name).
# A plain tuple because one is built per signal on the hot path.
Contribution = tuple[str, str, str, int, float, float, str]


class OpenAlert:
    """An alert awaiting an outcome (stage 0) or, after outreach, recovery (stage 1)."""

    __slots__ = ("alert_id", "trigger", "detected", "stage")

    def __init__(self, alert_id: str, trigger: int, detected: float, stage: int = 0) -> None:
        self.alert_id = alert_id
        self.trigger = trigger
        self.detected = detected
        self.stage = stage


class CustomerState:
    """Everything the engine remembers about one customer (see the module doc)."""

    __slots__ = (
        "customer_id", "tier", "tier_ts", "ref", "sums", "n_events", "ids", "id_floor",
        "journeys", "closed", "last_alert", "below_active", "cleared", "open_alerts",
        "reasons", "survey_ts", "survey_detractor", "complaint_ts", "complaint_resolved_ts",
    )  # fmt: skip

    def __init__(self, customer_id: str) -> None:
        self.customer_id = customer_id
        self.tier: str | None = None  # None: the default tier
        self.tier_ts = NEG_INF  # time of the newest event that carried a tier
        self.ref = NEG_INF  # newest event time: the sums are rebased to it
        # per dimension d: [4d] short sum(v*w), [4d+1] short sum(w), [4d+2]/[4d+3] long
        self.sums: list[float] = [0.0] * 16
        self.n_events = 0
        self.ids: dict[bytes, float] = {}  # event-id digest -> event time, insertion order
        self.id_floor = NEG_INF  # newest time of an evicted id: older unknown ids are refused
        self.journeys: dict[str, JourneyState] = {}
        self.closed: dict[bytes, None] = {}  # digests of completed journeys (tombstones)
        self.last_alert: dict[int, tuple[float, int]] = {}  # trigger -> (event time, severity)
        self.below_active = False  # hysteresis of below_expectation
        self.cleared: dict[int, float] = {}  # trigger -> time of a "resolved" outcome
        self.open_alerts: list[OpenAlert] = []
        self.reasons: list[Contribution] = []
        self.survey_ts = NEG_INF  # newest survey with nps or csat
        self.survey_detractor = False
        self.complaint_ts = NEG_INF
        self.complaint_resolved_ts = NEG_INF

    # ------------------------------------------------------------------ serialization
    def to_bytes(self) -> bytes:
        """Compact versioned orjson encoding (format v1)."""
        return orjson.dumps(_encode(self))

    @classmethod
    def from_bytes(cls, data: bytes) -> CustomerState:
        """Decode any known version, upgrading older ones; raises StateError otherwise."""
        try:
            obj = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise StateError(f"customer state is not JSON ({exc}): the store is corrupt") from exc
        try:
            if isinstance(obj, dict) and obj.get("version", 0) == 0:
                obj = _upgrade_v0(obj)
            if not isinstance(obj, list) or not obj or obj[0] != STATE_VERSION:
                version = obj[0] if isinstance(obj, list) and obj else obj
                raise StateError(
                    f"customer state version {version!r} is unknown (this build reads <= "
                    f"{STATE_VERSION}): run the newer release or rebuild state by replay"
                )
            return _decode(obj)
        except StateError:
            raise
        except (KeyError, IndexError, TypeError, ValueError, struct.error) as exc:
            raise StateError(
                f"customer state is malformed ({exc!r}): rebuild it by replay"
            ) from exc


def canonical(ts: float) -> float:
    """A time rounded to whole milliseconds: bookkeeping times are kept canonical so they
    survive the integer-millisecond encoding exactly (a restored state behaves the same)."""
    return round(ts * 1000) / 1000


def _ms(ts: float, ref: float) -> int | None:
    """Milliseconds relative to the whole-millisecond anchor of ``ref`` (small integers)."""
    return None if ts == NEG_INF else round(ts * 1000) - round(ref * 1000)


def _ts(ms: int | None, ref: float) -> float:
    return NEG_INF if ms is None else (round(ref * 1000) + ms) / 1000


def _encode(s: CustomerState) -> list[Any]:
    ref = s.ref if s.ref != NEG_INF else 0.0
    ids = bytearray()
    for d, ts in s.ids.items():
        # age rounded DOWN, so a restored time is never older than the true one: the
        # eviction floor built from it stays >= the true time and a duplicate stays refused
        age = min(_MAX_AGE_MINUTES, max(0, math.floor((ref - ts) / 60)))
        ids += d + _ID_AGE.pack(age)
    journeys = [
        [
            j.id, JOURNEY_TYPE_INDEX[j.type], STATUS_INDEX[j.status], _ms(j.status_ts, ref),
            _ms(j.start, ref), _ms(j.last, ref), _ms(j.deadline, ref), j.attempts, j.failed,
            j.contacts, [_ms(t, ref) for t in j.contact_ts], int(j.stalled),
        ]
        for j in s.journeys.values()
    ]  # fmt: skip
    alerts = [
        [[t, _ms(ts, ref), sev] for t, (ts, sev) in s.last_alert.items()],
        int(s.below_active),
        [[t, _ms(ts, ref)] for t, ts in s.cleared.items()],
        [[a.alert_id, a.trigger, _ms(a.detected, ref), a.stage] for a in s.open_alerts],
    ]
    # grouped by event: [event_id, channel, type, time, [dim, vw, rule, dim, vw, rule, ...]]
    reasons: list[list[Any]] = []
    for e, ch, ty, dim, vw, ts, r in s.reasons:
        rel = _ms(ts, ref)
        if reasons and reasons[-1][0] == e and reasons[-1][3] == rel:
            reasons[-1][4].extend((dim, vw, r))
        else:
            reasons.append([e, CHANNEL_INDEX[ch], ty, rel, [dim, vw, r]])
    return [
        STATE_VERSION,
        s.customer_id,
        s.tier,
        _ms(s.tier_ts, ref),
        s.ref if s.ref != NEG_INF else None,
        s.n_events,
        # rounded UP so the restored floor still covers every evicted id
        None if s.id_floor == NEG_INF else math.ceil(s.id_floor * 1000) - round(ref * 1000),
        _b85(_SUMS.pack(*s.sums)),
        _b85(bytes(ids)),
        journeys,
        _b85(b"".join(s.closed)),
        alerts,
        reasons,
        [_ms(s.survey_ts, ref), int(s.survey_detractor)],
        [_ms(s.complaint_ts, ref), _ms(s.complaint_resolved_ts, ref)],
    ]


def _decode(o: list[Any]) -> CustomerState:
    s = CustomerState(o[1])
    s.tier = o[2]
    s.ref = o[4] if o[4] is not None else NEG_INF
    ref = o[4] if o[4] is not None else 0.0
    s.tier_ts = _ts(o[3], ref)
    s.n_events = o[5]
    s.id_floor = _ts(o[6], ref)
    s.sums = list(_SUMS.unpack(base64.b85decode(o[7])))
    raw_ids = base64.b85decode(o[8])
    step = ID_DIGEST_BYTES + _ID_AGE.size
    for i in range(0, len(raw_ids), step):
        (age,) = _ID_AGE.unpack_from(raw_ids, i + ID_DIGEST_BYTES)
        s.ids[raw_ids[i : i + ID_DIGEST_BYTES]] = ref - age * 60.0
    for jo in o[9]:
        j = JourneyState(jo[0], JOURNEY_TYPES[jo[1]], JOURNEY_STATUSES[jo[2]], 0.0, 0.0)
        j.status_ts, j.start, j.last, j.deadline = (_ts(x, ref) for x in jo[3:7])
        j.attempts, j.failed, j.contacts = jo[7], jo[8], jo[9]
        j.contact_ts = [_ts(x, ref) for x in jo[10]]
        j.stalled = bool(jo[11])
        s.journeys[j.id] = j
    closed = base64.b85decode(o[10])
    for i in range(0, len(closed), ID_DIGEST_BYTES):
        s.closed[closed[i : i + ID_DIGEST_BYTES]] = None
    last, below, cleared, open_alerts = o[11]
    s.last_alert = {t: (_ts(ms, ref), sev) for t, ms, sev in last}
    s.below_active = bool(below)
    s.cleared = {t: _ts(ms, ref) for t, ms in cleared}
    s.open_alerts = [OpenAlert(a, t, _ts(ms, ref), st) for a, t, ms, st in open_alerts]
    for e, ch, ty, ms, sigs in o[12]:
        ts = _ts(ms, ref)
        for k in range(0, len(sigs), 3):
            s.reasons.append((e, CHANNELS[ch], ty, sigs[k], sigs[k + 1], ts, sigs[k + 2]))
    s.survey_ts, s.survey_detractor = _ts(o[13][0], ref), bool(o[13][1])
    s.complaint_ts, s.complaint_resolved_ts = _ts(o[14][0], ref), _ts(o[14][1], ref)
    return s


def _b85(data: bytes) -> str:
    return base64.b85encode(data).decode("ascii")


def _upgrade_v0(o: dict[str, Any]) -> list[Any]:
    """v0 -> v1. v0 (first prototype) was a verbose dict::

        {"version": 0, "customer_id", "tier", "ref" (epoch s), "events": int,
         "dimensions": {name: [short_vw, short_w, long_vw, long_w]},
         "event_ids": [[event_id, ts], ...],
         "journeys": [{"id", "type", "status", "started", "last", "attempts", "contacts"}]}

    Full event ids become digests; journey deadlines are unknown in v0 and are set to
    the last step (due at once: the next stalled check decides), alert bookkeeping
    starts empty.
    """
    ref = float(o["ref"]) if o.get("ref") is not None else None
    base = ref if ref is not None else 0.0
    sums: list[float] = []
    for name in DIMENSIONS:
        sums.extend(float(x) for x in o.get("dimensions", {}).get(name, [0.0, 0.0, 0.0, 0.0]))
    ids = bytearray()
    for event_id, ts in o.get("event_ids", []):
        age = min(_MAX_AGE_MINUTES, max(0, math.floor((base - float(ts)) / 60)))
        ids += digest(event_id) + _ID_AGE.pack(age)
    journeys = []
    for j in o.get("journeys", []):
        last = _ms(float(j["last"]), base)
        journeys.append([
            j["id"], JOURNEY_TYPE_INDEX[j["type"]], STATUS_INDEX[j["status"]], last,
            _ms(float(j["started"]), base), last, last, int(j.get("attempts", 0)), 0,
            int(j.get("contacts", 0)), [], 0,
        ])  # fmt: skip
    return [
        STATE_VERSION, o["customer_id"], o.get("tier"), None if ref is None else 0, ref,
        int(o.get("events", 0)), None, _b85(_SUMS.pack(*sums)), _b85(bytes(ids)), journeys,
        "", [[], 0, [], []], [], [None, 0], [None, None],
    ]  # fmt: skip
