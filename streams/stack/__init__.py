"""The local stack: a single-node KRaft Kafka and a Redis for development and tests.

``touchpoint stack up|down|status`` (streams/cli/stack_cmd.py) drives it; stdlib only,
so ``deploy/local/stack`` can run it before the virtualenv exists.
"""

from streams.stack.config import StackConfig
from streams.stack.service import ServiceReport
from streams.stack.stack import down, status, up

__all__ = ["ServiceReport", "StackConfig", "down", "status", "up"]
