"""Replay: the engine in-process over a JSON Lines file (no Kafka needed)."""

from streams.replay.runner import ReplayResult, replay

__all__ = ["ReplayResult", "replay"]
