"""Writing a run: events and labels as JSON Lines (orjson), optionally paced."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import IO, Any

import orjson

from streams.sim.simulation import Label

# How many records are written between two checks of the pace.
_PACE_EVERY = 50


def write_jsonl(events: Iterable[dict[str, Any]], out: IO[bytes], *, rate: float = 0.0) -> int:
    """Write one JSON object per line; ``rate`` > 0 paces to that many events per second.

    Returns the number of records written.
    """
    dumps = orjson.dumps
    written = 0
    started = time.monotonic()
    for event in events:
        out.write(dumps(event) + b"\n")
        written += 1
        if rate > 0 and written % _PACE_EVERY == 0:
            ahead = written / rate - (time.monotonic() - started)
            if ahead > 0:
                out.flush()
                time.sleep(ahead)
    out.flush()
    return written


def write_labels(labels: Iterable[Label], out: IO[bytes]) -> int:
    """Write the ground-truth labels, one ``{customer_id, degradation, start, end}`` a line."""
    written = 0
    for label in labels:
        out.write(orjson.dumps(label.to_dict()) + b"\n")
        written += 1
    out.flush()
    return written
