"""What one input did to a customer: :class:`Decision`.

One decision is built per event, so it is cheap: defaults live on the class (an
instance holds only what differs), the lists default to one shared read-only empty
list, and the scores are computed only when read (from the sums captured when the
event was applied) unless the engine already needed them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NoReturn

if TYPE_CHECKING:
    from streams.engine.alerts import Alert
    from streams.engine.config import EngineConfig


class _ReadOnlyList(list):  # type: ignore[type-arg]
    """The shared empty default of Decision's lists: assign a new list, never mutate it."""

    def _refuse(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise TypeError("a Decision's default list is shared: assign a new list instead")

    append = extend = insert = remove = pop = clear = sort = reverse = _refuse
    __setitem__ = __delitem__ = __iadd__ = __imul__ = _refuse  # type: ignore[assignment]


_EMPTY: Any = _ReadOnlyList()


class Decision:
    """What one input did. ``changed`` is False for a duplicate or refused input."""

    changed: bool = True
    duplicate: bool = False  # event_id already counted
    too_late: bool = False  # older than the de-dup memory reaches: refused (may be a repeat)
    matched: int = 0  # rules that fired (0: the worker counts the event as unmatched)
    outreach_seconds: float | None = None  # apply_outcome: first outreach of an alert
    unknown_alert: bool = False  # apply_outcome: the alert is not (or no longer) open
    alerts: list[Alert] = _EMPTY
    deadlines: list[tuple[str, float]] = _EMPTY  # (journey_id, deadline_ts) to register
    recovered: list[str] = _EMPTY  # alert ids whose customer's experience recovered
    stalled: list[str] = _EMPTY  # journey ids newly found stalled (check_stalled)
    # (score, expectation, evidence, negative) once known; or what computes them
    _values: tuple[float, float, float, float] | None = None
    _inputs: tuple[EngineConfig, Sequence[float], float, float, str | None] | None = None

    def _scores(self) -> tuple[float, float, float, float] | None:
        values = self._values
        if values is None and self._inputs is not None:
            from streams.engine.snapshot import compute

            values = self._values = compute(*self._inputs)
        return values

    @property
    def score(self) -> float | None:
        """Unrounded score after the input (None for a refused input)."""
        values = self._scores()
        return None if values is None else values[0]

    @property
    def expectation(self) -> float | None:
        values = self._scores()
        return None if values is None else values[1]

    @property
    def gap(self) -> float | None:
        values = self._scores()
        return None if values is None else values[1] - values[0]
