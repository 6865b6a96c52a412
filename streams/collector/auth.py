"""API keys: parse them from configuration and authenticate a request.

A key is ``name:secret:channels`` where ``channels`` is a comma-separated list of
channels from the contract or ``*`` for all of them; keys are separated by ``;``
(``settings.api_keys``). The NAME is what metrics and logs show; the secret is
only ever compared, in constant time, never logged or echoed.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from streams.codec.types import CHANNELS
from streams.errors import ConfigError

ALL_CHANNELS = "*"
API_KEY_HEADER = "X-API-Key"
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.")


@dataclass(frozen=True, slots=True)
class ApiKey:
    """One configured key: a public name, a secret and the channels it may send."""

    name: str
    secret: str = field(repr=False)
    channels: frozenset[str]

    @property
    def all_channels(self) -> bool:
        return ALL_CHANNELS in self.channels

    @property
    def reads_scores(self) -> bool:
        """Keys allowed every channel (server-side keys such as the CRM's) may read scores."""
        return self.all_channels or set(CHANNELS) <= self.channels

    def allows(self, channel: str) -> bool:
        return self.all_channels or channel in self.channels


def parse_api_keys(spec: str) -> tuple[ApiKey, ...]:
    """Parse ``'name:secret:chan1,chan2;name2:secret2:*'``.

    Raises :class:`ConfigError` naming the faulty entry (by position and name,
    never by secret) for an empty or malformed spec, a duplicate name or
    secret, or an unknown channel.
    """
    keys: list[ApiKey] = []
    entries = [e.strip() for e in spec.split(";") if e.strip()]
    if not entries:
        raise ConfigError(
            "TOUCHPOINT_API_KEYS is empty: set at least one key as 'name:secret:web,app' "
            "(or 'name:secret:*' for every channel)"
        )
    for position, entry in enumerate(entries, start=1):
        parts = entry.split(":")
        if len(parts) != 3:
            raise ConfigError(
                f"TOUCHPOINT_API_KEYS entry {position} must be 'name:secret:channels' "
                f"(3 fields separated by ':', got {len(parts)})"
            )
        name, secret, channel_list = (p.strip() for p in parts)
        if not name or not set(name) <= _NAME_CHARS or len(name) > 64:
            raise ConfigError(
                f"TOUCHPOINT_API_KEYS entry {position}: the name must be 1-64 characters "
                "from letters, digits, '_', '-', '.' (it is used as a metric label)"
            )
        if len(secret) < 8:
            raise ConfigError(
                f"TOUCHPOINT_API_KEYS key {name!r}: the secret must be at least 8 characters"
            )
        channels = frozenset(c.strip() for c in channel_list.split(",") if c.strip())
        unknown = sorted(channels - set(CHANNELS) - {ALL_CHANNELS})
        if not channels or unknown:
            raise ConfigError(
                f"TOUCHPOINT_API_KEYS key {name!r}: channels must be '*' or a comma-separated "
                f"list of {', '.join(CHANNELS)}"
                + (f" (unknown: {', '.join(unknown)})" if unknown else " (none given)")
            )
        keys.append(ApiKey(name=name, secret=secret, channels=channels))
    names = [k.name for k in keys]
    duplicate_names = sorted({n for n in names if names.count(n) > 1})
    if duplicate_names:
        raise ConfigError(f"TOUCHPOINT_API_KEYS: duplicate key names {duplicate_names}")
    secrets = [k.secret for k in keys]
    if len(set(secrets)) != len(secrets):
        raise ConfigError("TOUCHPOINT_API_KEYS: two keys share the same secret; give each its own")
    return tuple(keys)


def presented_secret(headers: Mapping[str, str]) -> str | None:
    """The secret a request presents: ``X-API-Key``, else ``Authorization: Bearer <secret>``."""
    value = headers.get(API_KEY_HEADER)
    if value is not None and value.strip():
        return value.strip()
    authorization = headers.get("Authorization")
    if authorization is not None:
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
    return None


def authenticate(keys: Sequence[ApiKey], secret: str | None) -> ApiKey | None:
    """The key whose secret equals ``secret``, compared in constant time, else ``None``.

    Every configured key is compared (no early exit), so the response time does
    not tell which key, if any, came close.
    """
    if secret is None:
        return None
    # Header values may carry undecodable bytes as surrogates; never let them raise.
    presented = secret.encode("utf-8", "surrogateescape")
    found: ApiKey | None = None
    for key in keys:
        if hmac.compare_digest(presented, key.secret.encode()):
            found = key
    return found


def forbidden_channels(
    key: ApiKey, channels: Iterable[tuple[int, object]]
) -> list[dict[str, object]]:
    """``[{index, channel}]`` for each event whose (contract) channel the key may not send.

    Only channels from the contract are checked: a missing or unknown channel
    is a validation fault of that event (422 ``invalid_value``), the same for
    every key.
    """
    return [
        {"index": index, "channel": channel}
        for index, channel in channels
        if isinstance(channel, str) and channel in CHANNELS and not key.allows(channel)
    ]
