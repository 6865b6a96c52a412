"""Upgrades of the JSON state formats of earlier releases (v1 array, v0 object) to a state.

What cannot be carried over exactly, and what is done instead:

- v1 remembered event ids as blake2b digests, v2 as CRC keys (cheaper per event): the
  old digests cannot be converted, so they are dropped and the de-dup floor rises to
  the newest of them. A redelivery of any remembered event is then refused as
  ``too_late`` (never counted twice); a genuinely new event older than the customer's
  newest pre-upgrade event is refused too (once, at the upgrade).
- v1 journey tombstones (blake2b digests of completed journeys) cannot be matched
  either and are dropped: a step arriving after the upgrade for a journey completed
  before it re-opens that journey (it closes again on a completed step, else stalls once).
- v1 has no negative-evidence sum: it is rebuilt from the remembered negative
  contributions (the alert reasons), undecayed: an upper bound that decays from then on.
- v1 reasons were per signal with the rule name; v2 keeps one entry per rule firing and
  resolves the rule's negative signals when an alert is built.
"""

from __future__ import annotations

import base64
import math
import struct
from typing import Any, Final

import orjson

from streams.codec.types import CHANNELS, JOURNEY_STATUSES, JOURNEY_TYPES
from streams.engine.config import DIMENSIONS
from streams.engine.state import (
    NEG,
    NEG_INF,
    CustomerState,
    JourneyState,
    OpenAlert,
    canonical,
    id_key,
    rule_key,
)
from streams.errors import StateError

_V1_SUMS: Final = struct.Struct("<16d")
_V1_DIGEST: Final = 6
_V1_ID: Final = _V1_DIGEST + 2  # digest + age in minutes (u16)


def upgrade_json(data: bytes) -> CustomerState:
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise StateError(f"customer state is not JSON ({exc}): the store is corrupt") from exc
    try:
        if isinstance(obj, dict) and obj.get("version", 0) == 0:
            return _checked(_from_v0(obj))
        if isinstance(obj, list) and obj and obj[0] == 1:
            return _checked(_from_v1(obj))
    except (KeyError, IndexError, TypeError, ValueError, OverflowError, struct.error) as exc:
        raise StateError(f"customer state is malformed ({exc!r}): rebuild it by replay") from exc
    version = obj[0] if isinstance(obj, list) and obj else obj
    raise StateError(
        f"customer state version {version!r} is unknown (this build reads JSON versions "
        "0 and 1, binary 2): run the newer release or rebuild state by replay"
    )


def _checked(state: CustomerState) -> CustomerState:
    """An upgraded state that the current format can hold: encoding it refuses an unknown
    journey type or status, a step before its journey's start, a negative counter, so a
    bad old record is a StateError now, not a failure on every later batch."""
    from streams.engine.codec import encode_state

    encode_state(state)
    return state


def _ts(ms: int | None, base_ms: int) -> float:
    return NEG_INF if ms is None else (base_ms + ms) / 1000


def _from_v1(o: list[Any]) -> CustomerState:
    s = CustomerState(o[1])
    s.tier = o[2]
    ref = float(o[4]) if o[4] is not None else NEG_INF
    base_ms = round(ref * 1000) if o[4] is not None else 0
    s.tier_ts = _ts(o[3], base_ms)
    s.n_events = o[5]
    floor = _ts(o[6], base_ms)
    _set_time(s, ref)
    s.acc[:NEG] = _V1_SUMS.unpack(base64.b85decode(o[7]))
    raw_ids = base64.b85decode(o[8])
    base_ref = ref if ref != NEG_INF else 0.0
    for i in range(0, len(raw_ids), _V1_ID):
        (age,) = struct.unpack_from("<H", raw_ids, i + _V1_DIGEST)
        floor = max(floor, base_ref - age * 60.0)  # the old digests cannot be matched
    s.id_floor = floor
    for jo in o[9]:
        j = JourneyState(jo[0], JOURNEY_TYPES[jo[1]], JOURNEY_STATUSES[jo[2]], 0.0, 0.0)
        j.start, j.last, j.deadline = (_ts(x, base_ms) for x in jo[4:7])
        j.attempts, j.failed, j.contacts = jo[7], jo[8], jo[9]
        j.contact_ts = [_ts(x, base_ms) for x in jo[10]]
        j.stalled = bool(jo[11])
        s.journeys[j.id] = j
    last, below, cleared, open_alerts = o[11]
    s.last_alert = {t: (_ts(ms, base_ms), sev) for t, ms, sev in last}
    s.below_active = bool(below)
    s.cleared = {t: _ts(ms, base_ms) for t, ms in cleared}
    s.open_alerts = [OpenAlert(a, t, _ts(ms, base_ms), st) for a, t, ms, st in open_alerts]
    negative = 0.0
    for e, ch, ty, ms, sigs in o[12]:
        ts = _ts(ms, base_ms)
        for k in range(0, len(sigs), 3):
            negative -= min(0.0, float(sigs[k + 1]))
            entry = (e, CHANNELS[ch], ty, ts, rule_key(sigs[k + 2]))
            if entry not in s.reasons:
                s.reasons.append(entry)
    s.acc[NEG] = negative
    s.survey_ts, s.survey_detractor = _ts(o[13][0], base_ms), bool(o[13][1])
    s.complaint_ts, s.complaint_resolved_ts = _ts(o[14][0], base_ms), _ts(o[14][1], base_ms)
    return s


def _from_v0(o: dict[str, Any]) -> CustomerState:
    """v0 (the first prototype) was a verbose dict::

        {"version": 0, "customer_id", "tier", "ref" (epoch s), "events": int,
         "dimensions": {name: [short_vw, short_w, long_vw, long_w]},
         "event_ids": [[event_id, ts], ...],
         "journeys": [{"id", "type", "status", "started", "last", "attempts", "contacts"}]}

    Full event ids are kept (as keys); journey deadlines are unknown in v0 and are set
    to the last step (due at once: the next stalled check decides); alert bookkeeping
    starts empty.
    """
    s = CustomerState(o["customer_id"])
    s.tier = o.get("tier")
    ref = float(o["ref"]) if o.get("ref") is not None else NEG_INF
    _set_time(s, ref)
    if ref != NEG_INF:
        s.tier_ts = ref
    s.n_events = int(o.get("events", 0))
    dims = o.get("dimensions", {})
    for d, name in enumerate(DIMENSIONS):
        s.acc[4 * d : 4 * d + 4] = [float(x) for x in dims.get(name, [0.0, 0.0, 0.0, 0.0])]
    for event_id, ts in o.get("event_ids", []):
        s.ids[id_key(event_id)] = math.floor(float(ts) * 1000) / 1000
    for j in o.get("journeys", []):
        last = round(float(j["last"]) * 1000) / 1000
        js = JourneyState(j["id"], j["type"], j["status"], last, last)
        js.start = round(float(j["started"]) * 1000) / 1000
        js.attempts = int(j.get("attempts", 0))
        js.contacts = int(j.get("contacts", 0))
        s.journeys[js.id] = js
    return s


def _set_time(s: CustomerState, ref: float) -> None:
    """Anchor the (already referred-to-ref) sums at ref, in whole milliseconds (the decay
    factors, ~1, are computed on first use, as after any decode)."""
    s.ref = ref
    s.anchor = canonical(ref) if ref != NEG_INF else NEG_INF
    s.short_f = s.long_f = 0.0
