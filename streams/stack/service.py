"""What `up`, `down` and `status` report about one service."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ServiceReport:
    """One line of output: ``kafka  127.0.0.1:9092  started (pid 123) in 6.1s``.

    ``state`` is one of: started, already running, external (answering, not ours),
    stopped, not running, answering, not answering.
    """

    name: str
    address: str
    state: str
    pid: int | None = None
    seconds: float | None = None
    detail: str = ""

    @property
    def started_here(self) -> bool:
        return self.state == "started"

    def line(self) -> str:
        text = f"{self.name:<6} {self.address:<16} {self.state}"
        if self.pid is not None:
            text += f" (pid {self.pid})"
        if self.seconds is not None:
            text += f" in {self.seconds:.1f}s"
        if self.detail:
            text += f": {self.detail}"
        return text
