"""CORS for browser clients: answer preflights and label answers for allowed origins.

Browsers send events with a key that is public anyway (see docs/collector.md),
so CORS does not guard a secret here: it lets the pages of the origins listed
in ``TOUCHPOINT_CORS_ORIGINS`` read the collector's answers (per-event results,
``Retry-After``). No cookies are involved (``Access-Control-Allow-Credentials``
is never sent); the API key travels in a header, which every request checks.

The middleware sits outside the safety net, so error answers (401, 404, 429,
500, ...) carry the headers too and a page can read why it was refused.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Final

from aiohttp import web
from aiohttp.typedefs import Middleware

from streams.collector.handlers import json_error

ALLOW_METHODS: Final = "GET, POST, OPTIONS"
ALLOW_HEADERS: Final = "Content-Type, X-API-Key, Authorization"
# Headers a page may read from an answer besides the CORS-safelisted ones.
EXPOSE_HEADERS: Final = "Retry-After, X-Touchpoint-Source"
MAX_AGE_SECONDS: Final = "600"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def parse_origins(raw: str) -> frozenset[str]:
    """The allowed origins of the (already normalized) setting; empty means CORS off."""
    return frozenset(o for o in raw.split(",") if o)


def is_preflight(request: web.Request) -> bool:
    return request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers


def cors_middleware(origins: frozenset[str]) -> Middleware:
    """A middleware allowing ``origins`` (``*`` = any origin; the origin is echoed back)."""
    any_origin = "*" in origins

    def allowed(origin: str | None) -> str | None:
        """The origin to allow in the answer, or None."""
        if origin is not None and (any_origin or origin.lower() in origins):
            return origin
        return None

    @web.middleware
    async def cors(request: web.Request, handler: Handler) -> web.StreamResponse:
        origin = request.headers.get("Origin")
        if is_preflight(request):
            return _preflight(origin, allowed(origin))
        response = await handler(request)
        allow = allowed(origin)
        if allow is not None:
            response.headers["Access-Control-Allow-Origin"] = allow
            response.headers["Access-Control-Expose-Headers"] = EXPOSE_HEADERS
        # The answer depends on Origin: caches must not give one origin's to another.
        response.headers.add("Vary", "Origin")
        return response

    return cors


def _preflight(origin: str | None, allow: str | None) -> web.Response:
    """204 with the CORS grants for an allowed origin, else 403 (the browser then blocks)."""
    if allow is None:
        return json_error(
            403,
            "cors_origin_forbidden",
            f"origin {origin!r} may not call this collector from a browser: add it to "
            "TOUCHPOINT_CORS_ORIGINS",
            headers={"Vary": "Origin"},
        )
    return web.Response(
        status=204,
        headers={
            "Access-Control-Allow-Origin": allow,
            "Access-Control-Allow-Methods": ALLOW_METHODS,
            "Access-Control-Allow-Headers": ALLOW_HEADERS,
            "Access-Control-Max-Age": MAX_AGE_SECONDS,
            "Vary": "Origin",
        },
    )
