"""Times on the command line: an RFC 3339 time, or an age before now (``--since 7d``)."""

from __future__ import annotations

import re

from streams.codec.timestamps import parse_rfc3339
from streams.errors import ConfigError

_AGE = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_when(text: str | None, now: float, option: str) -> float | None:
    """Epoch seconds of an RFC 3339 time or an age before ``now`` (``90s``, ``30m``, ``2h``,
    ``7d``); None for None. :class:`ConfigError` naming ``option`` otherwise."""
    if text is None:
        return None
    match = _AGE.match(text)
    if match is not None:
        return now - float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    ts = parse_rfc3339(text)
    if ts is None:
        raise ConfigError(
            f"{option} {text!r} is neither an RFC 3339 time like 2026-11-26T10:00:00Z "
            "nor an age like 30m, 2h or 7d"
        )
    return ts
