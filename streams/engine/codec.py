"""Customer state on the wire: the compact binary format v2, and upgrades from v1 and v0.

v2 is a flat byte record (no JSON): a version byte, then fields in a fixed order.
Integers are LEB128 varints; times are whole milliseconds relative to the newest
event time (zigzag varint, 0 = "never"); the decayed sums are float64, written only
when non-zero (a bit mask says which); event-id keys are 6 raw bytes with their time
rounded UP to a whole minute of the absolute clock, stored as minutes before the
newest event's minute (so a restored time is never older than the true one and the
de-dup floor built from it stays conservative, and a restored time is already on
the grid: saving and loading again changes nothing, however often the worker does
it; an earlier rounding relative to the newest event drifted later on every round
trip); alert ids are 8 raw bytes;
rule names in reasons are 3-byte keys resolved against the rules when an alert is
built; journey counters share one varint when small. Layout, in order::

    u8 version=2 | str customer_id | u8 tier code (+ str if not a common tier) | f64 ref
    | t anchor
    | uv events | t tier_ts | t id_floor (rounded up) | t survey_ts | t complaint_ts
    | t complaint_resolved_ts | u8 flags (1 below_active, 2 survey_detractor)
    | uv sum mask, f64 per set bit | uv n, n x (6B id key, uv age minutes)
    | uv n, n x journey | uv n, n x 6B tombstone key | uv n, n x (u8 trigger, t, u8 severity)
    | uv n, n x (u8 trigger, t) | uv n, n x open alert | uv n, n x reason group

Reading v1 (a JSON array) and v0 (a JSON object) upgrades them: see ``upgrade.py``.
"""

from __future__ import annotations

import math
import struct
from typing import Final

from streams.codec.catalogue import CATALOGUE
from streams.codec.types import CHANNELS, JOURNEY_STATUSES, JOURNEY_TYPES
from streams.engine.state import (
    CHANNEL_INDEX,
    JOURNEY_TYPE_INDEX,
    N_SUMS,
    NEG_INF,
    STATE_VERSION,
    STATUS_INDEX,
    Contribution,
    CustomerState,
    JourneyState,
    OpenAlert,
)
from streams.errors import StateError

_F64: Final = struct.Struct("<d")
_ID_BYTES: Final = 6
_RULE_KEY_BYTES: Final = 3
_TYPES: Final = tuple(e.type for e in CATALOGUE)
_TYPE_INDEX: Final = {t: i for i, t in enumerate(_TYPES)}
_N_STATUS: Final = len(JOURNEY_STATUSES)
_TIERS: Final = (None, "standard", "plus", "premium")  # common tiers: one byte
_TIER_CODE: Final = {tier: i for i, tier in enumerate(_TIERS)}
_STRING_ID: Final = 0x40  # open alert flag: the id is not 16 hex digits, stored as text


class _Writer:
    __slots__ = ("b", "base")

    def __init__(self, base_ms: int) -> None:
        self.b = bytearray([STATE_VERSION])
        self.base = base_ms

    def uv(self, x: int) -> None:
        b = self.b
        while x >= 0x80:
            b.append((x & 0x7F) | 0x80)
            x >>= 7
        b.append(x)

    def s(self, text: str) -> None:
        data = text.encode()
        self.uv(len(data))
        self.b += data

    def t(self, ts: float, *, up: bool = False) -> None:
        if ts == NEG_INF:
            self.b.append(0)
            return
        rel = (math.ceil(ts * 1000) if up else round(ts * 1000)) - self.base
        self.uv(((rel << 1) if rel >= 0 else ((-rel << 1) - 1)) + 1)


class _Reader:
    __slots__ = ("d", "p", "base")

    def __init__(self, data: bytes) -> None:
        self.d = data
        self.p = 1
        self.base = 0

    def u8(self) -> int:
        x = self.d[self.p]
        self.p += 1
        return x

    def uv(self) -> int:
        d = self.d
        x = shift = 0
        while True:
            byte = d[self.p]
            self.p += 1
            x |= (byte & 0x7F) << shift
            if byte < 0x80:
                return x
            shift += 7

    def raw(self, n: int) -> bytes:
        start = self.p
        self.p += n
        if self.p > len(self.d):
            raise IndexError("record ends early")
        return self.d[start : self.p]

    def s(self) -> str:
        return self.raw(self.uv()).decode()

    def f64(self) -> float:
        value: float = _F64.unpack(self.raw(8))[0]
        return value

    def t(self) -> float:
        z = self.uv()
        if z == 0:
            return NEG_INF
        z -= 1
        rel = (z >> 1) if not z & 1 else -((z + 1) >> 1)
        return (self.base + rel) / 1000


def encode_state(s: CustomerState) -> bytes:
    ref = s.ref
    w = _Writer(round(ref * 1000) if ref != NEG_INF else 0)
    b = w.b
    w.s(s.customer_id)
    tier_code = _TIER_CODE.get(s.tier)
    if tier_code is None:
        b.append(len(_TIERS))
        w.s(str(s.tier))
    else:
        b.append(tier_code)
    b += _F64.pack(ref)
    w.t(s.anchor)  # whole milliseconds (set from canonical event times)
    w.uv(s.n_events)
    w.t(s.tier_ts)
    w.t(s.id_floor, up=True)  # rounded up: the restored floor still covers every evicted id
    w.t(s.survey_ts)
    w.t(s.complaint_ts)
    w.t(s.complaint_resolved_ts)
    b.append(s.below_active | s.survey_detractor << 1)
    acc = s.acc
    mask = sum(1 << i for i in range(N_SUMS) if acc[i] != 0.0)
    w.uv(mask)
    for i in range(N_SUMS):
        if mask >> i & 1:
            b += _F64.pack(acc[i])
    w.uv(len(s.ids))
    ref_minute = _minute_up(ref if ref != NEG_INF else 0.0)
    for key, ts in s.ids.items():
        b += key.to_bytes(_ID_BYTES, "little")
        w.uv(max(0, ref_minute - _minute_up(ts)))
    w.uv(len(s.journeys))
    for j in s.journeys.values():
        _write_journey(w, j)
    w.uv(len(s.closed))
    for key in s.closed:
        b += key.to_bytes(_ID_BYTES, "little")
    w.uv(len(s.last_alert))
    for trigger, (ts, severity) in s.last_alert.items():
        b.append(trigger)
        w.t(ts)
        b.append(severity)
    w.uv(len(s.cleared))
    for trigger, ts in s.cleared.items():
        b.append(trigger)
        w.t(ts)
    w.uv(len(s.open_alerts))
    for a in s.open_alerts:
        compact = len(a.alert_id) == 16 and all(c in "0123456789abcdef" for c in a.alert_id)
        b.append(a.trigger | a.stage << 3 | (0 if compact else _STRING_ID))
        if compact:
            b += bytes.fromhex(a.alert_id)
        else:
            w.s(a.alert_id)
        w.t(a.detected)
    _write_reasons(w, s.reasons)
    return bytes(b)


def _minute_up(ts: float) -> int:
    """The whole minute at or after ``ts`` (epoch seconds), on the absolute minute grid."""
    return math.ceil(ts / 60)


def _write_journey(w: _Writer, j: JourneyState) -> None:
    w.s(j.id)
    w.b.append(JOURNEY_TYPE_INDEX[j.type] * _N_STATUS + STATUS_INDEX[j.status] | j.stalled << 7)
    start_ms = round(j.start * 1000)
    w.t(j.start)
    w.uv(round(j.last * 1000) - start_ms)
    sla_ms = round(j.deadline * 1000) - start_ms  # >= 0: start + SLA
    w.uv(sla_ms // 1000 << 1 if sla_ms % 1000 == 0 else sla_ms << 1 | 1)
    if j.attempts < 8 and j.failed < 8:  # the usual small counters share one varint
        w.uv((j.contacts << 6 | j.failed << 3 | j.attempts) << 1)
    else:
        w.uv(j.contacts << 1 | 1)
        w.uv(j.attempts)
        w.uv(j.failed)
    w.uv(len(j.contact_ts))
    for c in j.contact_ts:
        w.uv(round(c * 1000) - start_ms)


def _write_reasons(w: _Writer, reasons: list[Contribution]) -> None:
    """Grouped by event: event id, channel, type and time once, then the rule keys."""
    groups: list[list[Contribution]] = []
    for r in reasons:
        if groups and groups[-1][0][0] == r[0] and groups[-1][0][3] == r[3]:
            groups[-1].append(r)
        else:
            groups.append([r])
    w.uv(len(groups))
    b = w.b
    for group in groups:
        event_id, channel, etype, ts, _ = group[0]
        w.s(event_id)
        b.append(CHANNEL_INDEX[channel])
        idx = _TYPE_INDEX.get(etype)
        if idx is None:
            b.append(0)
            w.s(etype)
        else:
            w.uv(idx + 1)
        w.t(ts)
        w.uv(len(group))
        for r in group:
            b += r[4].to_bytes(_RULE_KEY_BYTES, "little")


def decode_state(data: bytes) -> CustomerState:
    """Any known version to a state; StateError (saying what to do) otherwise."""
    if not data:
        raise StateError("customer state is empty: the store is corrupt; rebuild it by replay")
    first = data[0]
    if first in b"[{ \t\r\n":
        from streams.engine.upgrade import upgrade_json

        return upgrade_json(data)
    if first != STATE_VERSION:
        raise StateError(
            f"customer state version {first} is unknown (this build reads <= "
            f"{STATE_VERSION}): run the newer release or rebuild state by replay"
        )
    try:
        return _decode_v2(data)
    except (IndexError, ValueError, KeyError, UnicodeDecodeError, struct.error) as exc:
        raise StateError(f"customer state is malformed ({exc!r}): rebuild it by replay") from exc


def _decode_v2(data: bytes) -> CustomerState:
    r = _Reader(data)
    s = CustomerState(r.s())
    tier_code = r.u8()
    s.tier = r.s() if tier_code == len(_TIERS) else _TIERS[tier_code]
    s.ref = ref = r.f64()
    r.base = round(ref * 1000) if ref != NEG_INF else 0
    s.anchor = r.t()
    s.n_events = r.uv()
    s.tier_ts = r.t()
    s.id_floor = r.t()
    s.survey_ts = r.t()
    s.complaint_ts = r.t()
    s.complaint_resolved_ts = r.t()
    flags = r.u8()
    s.below_active = bool(flags & 1)
    s.survey_detractor = bool(flags & 2)
    mask = r.uv()
    acc = s.acc
    for i in range(N_SUMS):
        if mask >> i & 1:
            acc[i] = r.f64()
    ref_minute = _minute_up(ref if ref != NEG_INF else 0.0)
    ids = s.ids
    for _ in range(r.uv()):
        key = int.from_bytes(r.raw(_ID_BYTES), "little")
        ids[key] = (ref_minute - r.uv()) * 60.0
    for _ in range(r.uv()):
        j = _read_journey(r)
        s.journeys[j.id] = j
    for _ in range(r.uv()):
        s.closed[int.from_bytes(r.raw(_ID_BYTES), "little")] = None
    for _ in range(r.uv()):
        trigger = r.u8()
        s.last_alert[trigger] = (r.t(), r.u8())
    for _ in range(r.uv()):
        trigger = r.u8()
        s.cleared[trigger] = r.t()
    for _ in range(r.uv()):
        head = r.u8()
        alert_id = r.s() if head & _STRING_ID else r.raw(8).hex()
        s.open_alerts.append(OpenAlert(alert_id, head & 7, r.t(), head >> 3 & 3))
    for _ in range(r.uv()):
        event_id = r.s()
        channel = CHANNELS[r.u8()]
        idx = r.uv()
        etype = r.s() if idx == 0 else _TYPES[idx - 1]
        ts = r.t()
        for _ in range(r.uv()):
            key = int.from_bytes(r.raw(_RULE_KEY_BYTES), "little")
            s.reasons.append((event_id, channel, etype, ts, key))
    if r.p != len(data):
        raise ValueError(f"{len(data) - r.p} bytes left over")
    return s


def _read_journey(r: _Reader) -> JourneyState:
    jid = r.s()
    code = r.u8()
    kind, status = divmod(code & 0x7F, _N_STATUS)
    start = r.t()
    start_ms = round(start * 1000)
    last = (start_ms + r.uv()) / 1000
    sla = r.uv()
    deadline = (start_ms + (sla >> 1 if sla & 1 else (sla >> 1) * 1000)) / 1000
    j = JourneyState(jid, JOURNEY_TYPES[kind], JOURNEY_STATUSES[status], start, deadline)
    j.last = last
    j.stalled = bool(code & 0x80)
    counters = r.uv()
    if counters & 1:
        j.contacts = counters >> 1
        j.attempts = r.uv()
        j.failed = r.uv()
    else:
        j.contacts, j.failed, j.attempts = counters >> 7, counters >> 4 & 7, counters >> 1 & 7
    j.contact_ts = [(start_ms + r.uv()) / 1000 for _ in range(r.uv())]
    return j
