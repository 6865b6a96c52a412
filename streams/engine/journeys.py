"""Journey bookkeeping for one event: open, step, close, count contacts, bound the list.

Order-independent by construction: start = earliest step, last = newest step,
status = status of the newest step (ties: the worse status), attempts = max of
``metrics.attempts`` and the count of failed steps, and ``completed`` is absorbing
(the journey id is kept as a tombstone so a late step cannot re-open it).
"""

from __future__ import annotations

from typing import Final

from streams.codec.types import Journey
from streams.engine.config import EngineConfig
from streams.engine.state import CustomerState, JourneyState, canonical, digest

TERMINAL_BAD: Final = frozenset({"failed", "abandoned"})
# tie-break for steps with the same time: the worse status wins, in any arrival order
_RANK: Final = {"started": 0, "progressed": 1, "abandoned": 2, "failed": 3}


class StepResult:
    """What one journey step did: the open journey (None if closed/unknown), triggers."""

    __slots__ = ("journey", "failed", "repeat", "deadline")

    def __init__(self) -> None:
        self.journey: JourneyState | None = None
        self.failed = False  # this step failed/abandoned an open journey
        self.repeat = False  # this contact made `count` contacts within the window
        self.deadline: float | None = None  # a new or moved deadline to register


def step(
    state: CustomerState,
    cfg: EngineConfig,
    journey: Journey,
    ts: float,  # canonical (whole milliseconds)
    attempts: float | None,
    is_contact: bool,
) -> StepResult:
    out = StepResult()
    jid = journey.id
    status = journey.status
    js = state.journeys.get(jid)
    if js is None:
        if state.closed and digest(jid) in state.closed:
            return out  # a late step of a completed journey
        if status == "completed":
            _tombstone(state, cfg, jid)
            return out
        js = JourneyState(jid, journey.type, status, ts, canonical(ts + cfg.sla[journey.type]))
        state.journeys[jid] = js
        out.deadline = js.deadline
        if len(state.journeys) > cfg.cap_open_journeys:
            _evict(state)
    else:
        if status == "completed":
            del state.journeys[jid]
            _tombstone(state, cfg, jid)
            return out
        if ts < js.start:
            js.start = ts
            js.type = journey.type
            js.deadline = canonical(ts + cfg.sla[journey.type])
            out.deadline = js.deadline
        if ts > js.last:
            js.last = ts
        if ts > js.status_ts or (ts == js.status_ts and _RANK[status] > _RANK[js.status]):
            js.status = status
            js.status_ts = ts
    if status == "failed":
        js.failed += 1
    if attempts is not None and attempts > js.attempts:
        js.attempts = int(attempts)
    if status in TERMINAL_BAD:
        out.failed = True
    if is_contact:
        js.contacts += 1
        times = js.contact_ts
        count = cfg.repeat_count
        if len(times) < count or ts > times[0]:
            times.append(ts)
            times.sort()
            if len(times) > count:
                del times[0]
            out.repeat = len(times) == count and times[-1] - times[0] <= cfg.repeat_window
    if jid in state.journeys:
        out.journey = js
    return out


def repeat_active(js: JourneyState, cfg: EngineConfig) -> bool:
    times = js.contact_ts
    return len(times) >= cfg.repeat_count and times[-1] - times[0] <= cfg.repeat_window


def _tombstone(state: CustomerState, cfg: EngineConfig, jid: str) -> None:
    state.closed[digest(jid)] = None
    while len(state.closed) > cfg.cap_closed_journeys:
        del state.closed[next(iter(state.closed))]


def _evict(state: CustomerState) -> None:
    """Drop one journey: a failed/abandoned one first, then the one idle longest."""
    victim = min(
        state.journeys.values(), key=lambda j: (j.status not in TERMINAL_BAD, j.last, j.id)
    )
    del state.journeys[victim.id]
