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
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_fromisoformat = datetime.fromisoformat


def parse_rfc3339(s: str) -> float | None:
    """Epoch seconds (UTC) of an RFC 3339 timestamp, or None if it is not one we accept."""
    n = len(s)
    # Shortest: 2024-05-17T10:21:33Z (20); longest: 9 fraction digits and an offset (35).
    if (
        n < 20
        or n > 35
        or s[4] != "-"
        or s[7] != "-"
        or s[10] != "T"
        or s[13] != ":"
        or s[16] != ":"
        or not s.isascii()
    ):
        return None
    last = s[-1]
    if last == "Z":
        frac = s[19:-1]
    else:
        sign = s[-6]
        if (sign != "+" and sign != "-") or s[-3] != ":" or s[-2] > "5":
            return None
        if not (s[-5:-3].isdigit() and s[-2:].isdigit()):
            return None
        frac = s[19:-6]
    if frac and (frac[0] != "." or len(frac) < 2 or len(frac) > 10 or not frac[1:].isdigit()):
        return None
    if not (
        s[0:4].isdigit()
        and s[5:7].isdigit()
        and s[8:10].isdigit()
        and s[11:13].isdigit()
        and s[14:16].isdigit()
        and s[17:19].isdigit()
    ):
        return None
    try:
        # Refuses month 13, day 32, hour 24, minute/second 60, offsets >= 24 h,
        # non-existent dates (02-30) and year 0.
        return (_fromisoformat(s) - _EPOCH).total_seconds()
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
