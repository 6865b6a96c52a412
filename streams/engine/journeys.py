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
from streams.engine.state import CustomerState, JourneyState, canonical, id_key

TERMINAL_BAD: Final = frozenset({"failed", "abandoned"})
# tie-break for steps with the same time: the worse status wins, in any arrival order
_RANK: Final = {"started": 0, "progressed": 1, "abandoned": 2, "failed": 3}


# what one journey step did: (the open journey or None if closed/unknown, this step
# failed/abandoned it, this contact made `count` contacts within the window, a new or
# moved deadline to register or None). A plain tuple: built on the hot path.
StepResult = tuple[JourneyState | None, bool, bool, float | None]
_NOTHING: Final[StepResult] = (None, False, False, None)


def step(
    state: CustomerState,
    cfg: EngineConfig,
    journey: Journey,
    ts: float,  # canonical (whole milliseconds)
    attempts: float | None,
    is_contact: int,  # truthy: the event is a contact about the journey
) -> StepResult:
    jid = journey.id
    status = journey.status
    deadline: float | None = None
    open_journeys = state.journeys
    js = open_journeys.get(jid)
    if js is None:
        closed = state.closed
        if closed:
            key = id_key(jid)
            if key in closed:
                return _NOTHING  # a late step of a completed journey
        if status == "completed":
            _tombstone(state, cfg, jid)
            return _NOTHING
        deadline = round((ts + cfg.sla[journey.type]) * 1000) / 1000  # canonical
        js = open_journeys[jid] = JourneyState(jid, journey.type, status, ts, deadline)
        if len(open_journeys) > cfg.cap_open_journeys:
            _evict(state)
    else:
        if status == "completed":
            del open_journeys[jid]
            _tombstone(state, cfg, jid)
            return _NOTHING
        if ts < js.start:
            js.start = ts
            js.type = journey.type
            js.deadline = deadline = canonical(ts + cfg.sla[journey.type])
        last = js.last
        if ts > last or (ts == last and _RANK[status] > _RANK[js.status]):
            if js.status in TERMINAL_BAD and status not in TERMINAL_BAD and not js.stalled:
                # Back on track after a failure: its deadline was dropped from the
                # watch list while it was failed, so it must be registered again.
                deadline = js.deadline
            js.last = ts
            js.status = status
    if status == "failed":
        js.failed += 1
    if attempts is not None and attempts > js.attempts:
        js.attempts = int(attempts)
    repeat = False
    if is_contact:
        js.contacts += 1
        times = js.contact_ts
        count = cfg.repeat_count
        if len(times) < count or ts > times[0]:
            times.append(ts)
            times.sort()
            if len(times) > count:
                del times[0]
            repeat = len(times) == count and times[-1] - times[0] <= cfg.repeat_window
    if jid not in open_journeys:
        return _NOTHING  # evicted at once (the cap)
    return (js, status in TERMINAL_BAD, repeat, deadline)


def repeat_active(js: JourneyState, cfg: EngineConfig) -> bool:
    times = js.contact_ts
    return len(times) >= cfg.repeat_count and times[-1] - times[0] <= cfg.repeat_window


def _tombstone(state: CustomerState, cfg: EngineConfig, jid: str) -> None:
    closed = state.closed
    closed[id_key(jid)] = None
    if len(closed) > cfg.cap_closed_journeys:
        del closed[next(iter(closed))]


def _evict(state: CustomerState) -> None:
    """Drop one journey: a failed/abandoned one first, then the one idle longest."""
    victim = min(
        state.journeys.values(), key=lambda j: (j.status not in TERMINAL_BAD, j.last, j.id)
    )
    del state.journeys[victim.id]
