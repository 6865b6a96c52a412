"""Making a stopping worker stop: Faust is told not to wait for abandoned events, and a
stop that hangs anyway ends the process with the code asked for."""

from __future__ import annotations

import subprocess
import sys
import weakref
from types import SimpleNamespace

from streams.agents.stopping import release_unacked


class Message:
    pass


def test_release_unacked_empties_the_set_faust_waits_on() -> None:
    held = [Message(), Message()]  # Faust's own log list keeps them alive, as in its stop
    consumer = SimpleNamespace(_unacked_messages=weakref.WeakSet(held))
    assert release_unacked(consumer) == 2
    assert len(consumer._unacked_messages) == 0
    assert release_unacked(SimpleNamespace()) == 0  # another Faust: nothing to release


def test_a_hung_stop_still_ends_the_process_with_the_code() -> None:
    code = ("from streams.agents.stopping import exit_hard_after\n"
            "import time\nexit_hard_after(0.2, 75)\ntime.sleep(30)\n")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,  # noqa: S603
                          timeout=20)  # fmt: skip
    assert done.returncode == 75
    assert "exiting now with code 75" in done.stderr
