"""The Redis serving layout shared by the worker (writer) and the collector (reader).

A customer's latest snapshot is the hash ``<prefix>:score:<customer_id>``: the
whole snapshot as JSON in ``snapshot`` plus a few flat fields a CRM can read
with ``HMGET`` without parsing JSON. Everything here can be rebuilt from the
compacted scores topic.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

FLAT_FIELDS: tuple[str, ...] = ("score", "expectation", "gap", "tier", "last_event_at")


def snapshot_key(prefix: str, customer_id: str) -> str:
    return f"{prefix}:score:{customer_id}"


def rate_limit_key(prefix: str, key_name: str, minute: int) -> str:
    return f"{prefix}:ratelimit:{key_name}:{minute}"


def snapshot_to_hash(snapshot: Mapping[str, Any]) -> dict[str, str]:
    """Flatten a score snapshot into the hash fields written to Redis."""
    fields = {name: str(snapshot[name]) for name in FLAT_FIELDS if name in snapshot}
    fields["at_risk"] = "1" if snapshot.get("at_risk") else "0"
    fields["snapshot"] = orjson.dumps(snapshot).decode()
    return fields


def hash_to_snapshot(fields: Mapping[bytes | str, bytes | str]) -> dict[str, Any] | None:
    """Read the snapshot back from a hash (``None`` when the hash is empty)."""
    raw = fields.get("snapshot", fields.get(b"snapshot"))
    if raw is None:
        return None
    result: dict[str, Any] = orjson.loads(raw)
    return result
