"""A Faust consumer whose seek after a rebalance also rewinds never-committed partitions.

Faust "pauses" a partition by leaving it out of the set of partitions it asks
aiokafka for; aiokafka keeps fetching it in the background. Faust passes its live
set, and at the end of a table recovery it empties that set (changelogs paused)
before it adds the stream partitions back. A fetch still waiting at that moment
gets an empty set, which aiokafka reads as "every partition": it hands over the
records prefetched for the stream partitions, and Faust drops them (their
partitions are not active yet), although aiokafka's position has moved past them.

Faust relies on the seek to committed offsets that follows (``perform_seek``) to
fetch such records again, but aiokafka's ``seek_to_committed`` skips a partition
whose committed offset is None or 0. A partition nothing was committed for yet
then stays at the end of what was dropped: the worker says "Worker ready" and
fetches nothing, with no error (seen after a restart with an uncommitted
backlog and a short changelog recovery).

:class:`RewindingConsumer` seeks those partitions (stream topics, not changelogs)
to the first offset this process has not handled (offset 0, the start of the log,
when it handled none); aiokafka moves an offset that retention has removed to the
earliest one. It is where aiokafka starts an uncommitted partition
on assignment anyway with ``auto_offset_reset="earliest"``, so nothing more is
delivered twice than after any rebalance.
"""

from __future__ import annotations

from collections.abc import Mapping

from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP

HANDLED_ATTR = "touchpoint_handled_offsets"
"""The app attribute holding ``(topic, partition) -> next offset to handle`` of what this
process handled (kept across rebalances; set by the worker)."""


class RewindingConsumer(faust_aiokafka.Consumer):
    """Faust's aiokafka consumer; its seek after a rebalance also rewinds the stream
    partitions with no committed offset (see the module docstring)."""

    async def seek_to_committed(self) -> Mapping[TP, int]:
        committed = await super().seek_to_committed()
        if self.app.conf.consumer_auto_offset_reset == "earliest":
            handled: Mapping[tuple[str, int], int] = getattr(self.app, HANDLED_ATTR, {})
            for tp, offset in committed.items():
                if not offset and not self._is_changelog_tp(tp):
                    # aiokafka did not seek it (None or 0). Go back to the first record this
                    # process has not handled (0 if none): not further, or a rebalance before
                    # the first commit would hand every handled record over again. The seek
                    # is synchronous: no fetch can land and be dropped before the flow resumes.
                    await self.seek(tp, handled.get((tp.topic, tp.partition), 0))
        return committed


class RewindingTransport(faust_aiokafka.Transport):
    """Faust's aiokafka transport, creating a :class:`RewindingConsumer`."""

    Consumer = RewindingConsumer
