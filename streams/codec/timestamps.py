"""RFC 3339 timestamps exactly as the v1 schemas accept them, parsed fast.

The schemas carry :data:`RFC3339_PATTERN`; :func:`parse_rfc3339` accepts a
string iff it matches that pattern (ECMA-262 semantics: ``$`` is the end of the
string, so a trailing newline does not match) AND names a real instant:

- the shape is ``YYYY-MM-DDTHH:MM:SS[.f{1,9}](Z|+hh:mm|-hh:mm)``, upper-case
  ``T`` and ``Z`` only, ASCII digits only (the pattern uses ``[0-9]``, not
  ``\\d``, which in some regex dialects matches other scripts' digits);
- month 01-12, day 01-31, hour 00-23, minute and second 00-59 (no leap second
  60), offset hours 00-23 and minutes 00-59 (all in the pattern);
- semantic, not in the pattern: the date exists (no 2023-02-29, no 04-31) and
  the year is 0001-9999 (no year 0000).

Fractions beyond microseconds are accepted and truncated in ``ts``.
Instead of the regex (about 0.7 µs a call) the hot path uses slice checks plus
``datetime.fromisoformat``, which already refuses out-of-range fields; the
property tests hold the two to the same answers.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Final

RFC3339_PATTERN: Final = (
    r"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
    r"T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,9})?"
    r"(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$"
)
"""The ``pattern`` of every timestamp field in schemas/*.v1.schema.json."""

EXAMPLE: Final = "2024-05-17T10:21:33.123Z"

# fullmatch, not search: Python's `$` also matches before a trailing newline, ECMA-262's does not.
_PATTERN: Final = re.compile(RFC3339_PATTERN[1:-1])
_OFFSET_MARKS: Final = frozenset(("+:", "-:"))
_fromisoformat = datetime.fromisoformat


def parse_rfc3339(s: str) -> float | None:
    """Epoch seconds (UTC) of an RFC 3339 timestamp, or None if it is not one we accept."""
    n = len(s)
    # Shortest: 2024-05-17T10:21:33Z (20); longest: 9 fraction digits and an offset (35).
    # s[4:17:3] is the five separators at 4, 7, 10, 13, 16 in one slice.
    if n < 20 or n > 35 or s[4:17:3] != "--T::" or not s.isascii():
        return None
    if s[-1] == "Z":
        if n != 20 and (s[19] != "." or n > 30 or not s[20:-1].isdigit()):
            return None
    elif (
        s[-6::3] not in _OFFSET_MARKS  # sign at -6, colon at -3
        or s[-2] > "5"  # offset minutes 00-59 (fromisoformat allows up to 23:59 total)
        or (n != 25 and (s[19] != "." or n < 27 or not s[20:-6].isdigit()))
    ):
        return None
    # The date and time digits are not checked here: with the separators fixed
    # above, fromisoformat reads them as exactly two or four ASCII digits each
    # and refuses anything else (the property tests mangle every position).
    try:
        # Refuses month 13, day 32, hour 24, minute/second 60, offsets >= 24 h,
        # non-existent dates (02-30) and year 0.
        return _fromisoformat(s).timestamp()  # aware: exactly (dt - epoch).total_seconds()
    except ValueError:
        return None


def matches_pattern(s: str) -> bool:
    """True iff ``s`` matches :data:`RFC3339_PATTERN` (ECMA-262 ``$``), real date or not."""
    return _PATTERN.fullmatch(s) is not None


def format_rfc3339(dt: datetime) -> str:
    """An aware datetime as RFC 3339 in UTC with milliseconds: ``2024-05-17T10:21:33.123Z``."""
    if dt.tzinfo is None:
        raise ValueError("expected a timezone-aware datetime, e.g. datetime.now(UTC)")
    return dt.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
