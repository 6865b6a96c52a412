"""Making sure a worker that has to stop does stop.

Faust stops in order: it waits until every event it handed to the agent has been
acknowledged, commits, and only then closes. A batch the worker gave up on while
stopping (:class:`~streams.errors.PublishAbandoned`) is never acknowledged, on
purpose (its offsets must not be committed), so that wait would last forever:
:func:`release_unacked` tells Faust to stop waiting for it. And a stuck worker that
stops itself arms :func:`exit_hard_after`: should the orderly stop hang anyway, the
process still ends, with the exit code that asks its supervisor to start it again
(nothing is lost: uncommitted records come again, and Redis is reconciled after the
next table recovery).
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

log = logging.getLogger(__name__)


def release_unacked(consumer: Any) -> int:
    """Stop Faust's consumer waiting for the events it handed out and that will never be
    acknowledged now; returns how many. Only while stopping: those events' offsets are
    not committed (Faust commits acknowledged offsets only), so they come again."""
    # Faust 0.15 keeps them in a private WeakSet; its stop loops until it is empty, and
    # keeps a strong reference to each in the list it logs, so freeing our own does not do.
    unacked = getattr(consumer, "_unacked_messages", None)
    if unacked is None:
        return 0
    n = len(unacked)
    unacked.clear()
    return n


def exit_hard_after(seconds: float, code: int) -> threading.Timer:
    """End the process with ``code`` after ``seconds`` unless it has ended by then."""

    def bail_out() -> None:
        log.critical(
            "the orderly stop did not finish within %.0f s: exiting now with code %d "
            "(records not committed come again; Redis is reconciled after the next recovery)",
            seconds,
            code,
        )
        logging.shutdown()
        os._exit(code)

    timer = threading.Timer(seconds, bail_out)
    timer.daemon = True
    timer.start()
    return timer
