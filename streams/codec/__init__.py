"""Codec: bytes to a typed :class:`TouchpointEvent` or a :class:`Rejection`."""
